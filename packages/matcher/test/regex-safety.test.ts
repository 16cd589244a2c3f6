import { describe, expect, it } from 'vitest'
import { checkRegexSafety, createMatcher, MAX_REGEX_SOURCE_LENGTH } from '../src/index.ts'

// Each of these backtracks exponentially (or is refused by rule: backreferences, quantified lookarounds).
const dangerous: [string, string, RegExp][] = [
  ['(a+)+', '', /repeats a group/],
  ['^/(a+)+$', '', /repeats a group/],
  ['(a*)*', '', /repeats a group/],
  ['(a|a)*', '', /repeats a group/],
  ['(.*a){20}', '', /repeats a group/],
  ['(a|aa)+', '', /repeats a group/],
  ['(\\w+\\s?)*$', '', /repeats a group/],
  ['^(([a-z])+.)+[A-Z]([a-z])+$', '', /repeats a group/],
  ['(x+x+)+y', '', /repeats a group/],
  ['^/([a-zA-Z0-9]+)*$', '', /repeats a group/],
  ['(a|a?)+', '', /repeats a group/],
  ['(.*){1,32000}[bc]', '', /repeats a group/],
  ['(?:a+){2}', '', /repeats a group/],
  ['(ab|ac)*', '', /repeats a group/],
  ['(|a)*', '', /repeats a group/],
  ['(?:/a*/?)*', '', /repeats a group/],
  ['^/((a)|b)+$', '', /repeats a group/],
  ['(a|A)+', 'i', /repeats a group/], // disjoint only without the i flag
  ['^(a)\\1$', '', /backreference/],
  ['^(?<n>a+)x\\k<n>$', '', /backreference/],
  ['(?=a+)', '', /lookahead or lookbehind containing a quantifier/],
  ['(?<=a*)b', '', /lookahead or lookbehind containing a quantifier/],
  ['^(?!.*admin)', '', /lookahead or lookbehind containing a quantifier/],
  ['x'.repeat(MAX_REGEX_SOURCE_LENGTH + 1), '', /is 1001 characters long; at most 1000/],
  ['(unclosed', '', /invalid regular expression/],
]

const ordinary: [string, string][] = [
  ['^/api/v[0-9]+/users$', ''],
  ['^/files/.*\\.png$', ''],
  ['^/(a|b)/x$', ''],
  ['^/users/(?<id>[0-9]+)$', ''],
  ['^/api(?:/[a-z0-9-]+)*$', ''],
  ['(?:/[^/]+)+$', ''],
  ['^/(?:get|put)/x$', ''],
  ['(a|b)+', ''],
  ['(?:get|put)+', ''],
  ['^/static/.+\\.(?:css|js)$', ''],
  ['^/v\\d+/', ''],
  ['json', 'i'],
  ['^/[^/]+/edit$', ''],
  ['^/a{2,5}$', ''],
  ['^/x(?:\\.json|\\.xml)?$', ''],
  ['^/items/(?<slug>[a-z-]+)(?:\\.(?<ext>json|xml))?$', ''],
  ['^/(?=api)', ''],
  ['^/(?!admin/)', ''],
  ['^/[\\u0041-\\u005A]+$', ''],
  ['^/\\p{L}+$', 'u'],
  ['^/(?:[a-z]|\\d)+$', ''],
  ['x'.repeat(MAX_REGEX_SOURCE_LENGTH), ''],
]

describe('checkRegexSafety', () => {
  it.each(dangerous)('refuses %j (flags %j)', (source, flags, reason) => {
    expect(checkRegexSafety(source, flags)).toMatch(reason)
  })

  it.each(ordinary)('accepts %j (flags %j)', (source, flags) => {
    expect(checkRegexSafety(source, flags)).toBeUndefined()
  })

  it('has at least 15 cases each way', () => {
    expect(dangerous.length).toBeGreaterThanOrEqual(15)
    expect(ordinary.length).toBeGreaterThanOrEqual(15)
  })
})

describe('unsafe regexes at createMatcher time', () => {
  it('refuses a catastrophic pathRegex, naming the route and the reason', () => {
    const create = (): unknown => createMatcher([{ name: 'greedy', match: { pathRegex: '^/(a+)+$' }, data: 1 }])
    expect(create).toThrow(Error)
    expect(create).toThrow(/^route "greedy": match\.pathRegex: "\^\/\(a\+\)\+\$" repeats a group that contains a quantifier/)
    expect(create).toThrow(/exponential time/)
  })

  it('refuses an unsafe RegExp object as pathRegex, and as a header or query condition', () => {
    expect(() => createMatcher([{ name: 'r', match: { pathRegex: /^\/(a|a)*$/i }, data: 1 }])).toThrow(
      /^route "r": match\.pathRegex: \/\^\\\/\(a\|a\)\*\$\/i repeats a group/,
    )
    expect(() => createMatcher([{ name: 'h', match: { path: '/', headers: { 'X-Tenant': /^(\w+\s?)*$/ } }, data: 1 }])).toThrow(
      /^route "h": match\.headers\.X-Tenant: regex .* repeats a group/,
    )
    expect(() => createMatcher([{ name: 'q', match: { path: '/', query: { id: /(a)\1/ } }, data: 1 }])).toThrow(
      /^route "q": match\.query\.id: regex .* uses a backreference/,
    )
  })

  it('keeps matching with accepted regexes, on path, header and query', () => {
    const m = createMatcher([
      { name: 'png', match: { pathRegex: '^/files/(?<name>.*)\\.png$', headers: { accept: /^image\/(?:png|webp)/ }, query: { v: /^\d+$/ } }, data: 1 },
    ])
    expect(m.match({ method: 'GET', path: '/files/a%20b.png?v=2', headers: { accept: 'image/png' } })?.params).toEqual({ name: 'a b' })
    expect(m.match({ method: 'GET', path: '/files/a.png?v=x', headers: { accept: 'image/png' } })).toBeUndefined()
  })

  it('matches a safe equivalent of the refused pattern on the classic attack input', () => {
    const m = createMatcher([{ name: 'as', match: { pathRegex: '^/a+$' }, data: 1 }])
    expect(m.match({ method: 'GET', path: '/' + 'a'.repeat(5000) + '!' })).toBeUndefined()
    expect(m.match({ method: 'GET', path: '/aaa' })?.route.name).toBe('as')
  })
})
