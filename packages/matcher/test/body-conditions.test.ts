import { describe, expect, it } from 'vitest'
import { createMatcher, validateRoute, type MatchInput, type RouteDefinition, type RouteMatch } from '../src/index.ts'

const route = (name: string, match: RouteMatch, priority?: number): RouteDefinition<string> => ({
  name,
  match,
  data: name,
  ...(priority === undefined ? {} : { priority }),
})
const post = (body: unknown, path = '/v1/chat/completions'): MatchInput => ({ method: 'POST', path, body })
const one = (body: RouteMatch['body']) => {
  const m = createMatcher([route('r', { path: '/x', body })])
  return (value: unknown): boolean => m.match(post(value, '/x')) !== undefined
}

describe('body conditions: values', () => {
  it('compares a string exactly, case-sensitive', () => {
    const ok = one({ model: 'llama-3-8b' })
    expect(ok({ model: 'llama-3-8b' })).toBe(true)
    expect(ok({ model: 'Llama-3-8b' })).toBe(false)
    expect(ok({ model: 'llama-3-8b ' })).toBe(false)
    expect(ok({ model: 'llama-3-8' })).toBe(false)
  })

  it('matches globs anchored at both ends, * being any run of characters', () => {
    const ok = one({ model: 'llama-3-*' })
    expect(ok({ model: 'llama-3-8b' })).toBe(true)
    expect(ok({ model: 'llama-3-' })).toBe(true) // * matches the empty run
    expect(ok({ model: 'xllama-3-8b' })).toBe(false)
    expect(ok({ model: 'llama-2-7b' })).toBe(false)
    const mid = one({ model: '*-3-*-instruct' })
    expect(mid({ model: 'llama-3-70b-instruct' })).toBe(true)
    expect(mid({ model: 'llama-3-70b-instruct-v2' })).toBe(false)
    expect(mid({ model: '-3--instruct' })).toBe(true)
    // head and tail must not overlap: "ab*ba" needs at least 4 characters
    const overlap = one({ model: 'ab*ba' })
    expect(overlap({ model: 'aba' })).toBe(false)
    expect(overlap({ model: 'abba' })).toBe(true)
    // a middle piece must fit before the tail
    const pieces = one({ model: 'a*bc*c' })
    expect(pieces({ model: 'abc' })).toBe(false)
    expect(pieces({ model: 'abcc' })).toBe(true)
    expect(pieces({ model: 'axbcyc' })).toBe(true)
    expect(one({ model: '*' })({ model: '' })).toBe(true)
    expect(one({ model: 'a**b' })({ model: 'aXYb' })).toBe(true)
  })

  it('matches a long adversarial value against a many-star glob quickly (no backtracking)', () => {
    const ok = one({ model: '*a*a*a*a*a*a*c*b' })
    // No "c": the equivalent regex /^.*a.*a.*a.*a.*a.*a.*c.*b$/ would try ~n^7 splits before failing.
    const value = 'a'.repeat(200_000) + 'b'
    expect(ok({ model: value })).toBe(false)
    expect(ok({ model: 'a'.repeat(100_000) + 'cb' })).toBe(true)
  })

  it('compares numbers, booleans and null strictly, never across types', () => {
    expect(one({ n: 1 })({ n: 1 })).toBe(true)
    expect(one({ n: 1 })({ n: '1' })).toBe(false)
    expect(one({ n: 1 })({ n: true })).toBe(false)
    expect(one({ stream: true })({ stream: true })).toBe(true)
    expect(one({ stream: true })({ stream: 'true' })).toBe(false)
    expect(one({ stream: true })({})).toBe(false)
    expect(one({ stream: false })({ stream: 0 })).toBe(false)
    expect(one({ user: null })({ user: null })).toBe(true)
    expect(one({ user: null })({})).toBe(false)
    expect(one({ model: '1' })({ model: 1 })).toBe(false)
    expect(one({ model: 'llama-*' })({ model: ['llama-3'] })).toBe(false)
  })

  it('tests presence with { exists }', () => {
    const present = one({ tools: { exists: true } })
    expect(present({ tools: [] })).toBe(true)
    expect(present({ tools: null })).toBe(true)
    expect(present({})).toBe(false)
    const absent = one({ tools: { exists: false } })
    expect(absent({})).toBe(true)
    expect(absent({ tools: 0 })).toBe(false)
    expect(one({ 'metadata.tier': { exists: false } })({ metadata: 'x' })).toBe(true) // not an object: no such field
  })

  it('accepts any entry of { in: [...] }, globs and scalars alike', () => {
    const ok = one({ model: { in: ['qwen-*', 'mistral-7b', 7, null] } })
    expect(ok({ model: 'qwen-2-7b' })).toBe(true)
    expect(ok({ model: 'mistral-7b' })).toBe(true)
    expect(ok({ model: 7 })).toBe(true)
    expect(ok({ model: null })).toBe(true)
    expect(ok({ model: 'mistral-7b-v2' })).toBe(false)
    expect(ok({ model: '7' })).toBe(false)
    expect(ok({})).toBe(false)
  })

  it('tests a RegExp against string fields only, without lastIndex state', () => {
    const ok = one({ model: /^gpt-4o(-mini)?$/g })
    expect(ok({ model: 'gpt-4o' })).toBe(true)
    expect(ok({ model: 'gpt-4o' })).toBe(true) // a `g` flag would make the second test fail
    expect(ok({ model: 'gpt-4o-mini' })).toBe(true)
    expect(ok({ model: 'gpt-4' })).toBe(false)
    expect(one({ n: /^1$/ })({ n: 1 })).toBe(false)
  })
})

describe('body conditions: fields and bodies', () => {
  it('follows dotted paths through objects, and "\\." names a key with a dot', () => {
    const ok = one({ 'metadata.tier': 'gold', 'a\\.b': 1, 'c\\\\d': 2 })
    expect(ok({ metadata: { tier: 'gold' }, 'a.b': 1, 'c\\d': 2 })).toBe(true)
    expect(ok({ metadata: { tier: 'gold' }, a: { b: 1 }, 'c\\d': 2 })).toBe(false)
    expect(ok({ 'metadata.tier': 'gold', 'a.b': 1, 'c\\d': 2 })).toBe(false)
  })

  it('does not walk into arrays or the prototype', () => {
    expect(one({ 'messages.0': { exists: true } })({ messages: [{ role: 'user' }] })).toBe(false)
    expect(one({ constructor: { exists: true } })({})).toBe(false)
    expect(one({ 'a.toString': { exists: true } })({ a: {} })).toBe(false)
    const proto = one({ ['__proto__']: { exists: true } }) // a computed key: an own "__proto__" field
    expect(proto({})).toBe(false)
    expect(proto(JSON.parse('{"__proto__": 1}'))).toBe(true)
  })

  it('requires every condition', () => {
    const ok = one({ model: 'llama-*', stream: true })
    expect(ok({ model: 'llama-3', stream: true })).toBe(true)
    expect(ok({ model: 'llama-3', stream: false })).toBe(false)
    expect(ok({ model: 'qwen', stream: true })).toBe(false)
  })

  it('matches no body that is not a JSON object', () => {
    const ok = one({ model: { exists: false } })
    for (const body of [undefined, null, 'x', 1, true, [], [{}]]) expect(ok(body)).toBe(false)
    expect(ok({})).toBe(true)
  })
})

describe('body conditions: precedence and needsBody', () => {
  it('a route with body conditions wins over the same path without, whatever the definition order', () => {
    const m = createMatcher([
      route('chat-any', { path: '/v1/chat/completions' }),
      route('chat-llama', { path: '/v1/chat/completions', body: { model: 'llama-*' } }),
      route('chat-qwen', { path: '/v1/chat/completions', body: { model: 'qwen-*' } }),
    ])
    expect(m.match(post({ model: 'llama-3-8b' }))?.route.name).toBe('chat-llama')
    expect(m.match(post({ model: 'qwen-2-7b' }))?.route.name).toBe('chat-qwen')
    expect(m.match(post({ model: 'gpt-4o' }))?.route.name).toBe('chat-any')
    expect(m.match(post(undefined))?.route.name).toBe('chat-any')
    expect(m.needsBody(post(undefined))).toBe(true)
  })

  it('keeps definition order among body routes, and a more specific path or higher priority still wins', () => {
    const m = createMatcher([
      route('first', { path: '/v1/*', body: { model: 'llama-*' } }),
      route('second', { path: '/v1/*', body: { model: 'llama-3-*' } }),
      route('exact', { path: '/v1/embeddings' }),
      route('low', { path: '/v1/chat', body: { model: { exists: true } } }, -1),
      route('high', { path: '/v1/*' }, 1),
    ])
    expect(m.match(post({ model: 'llama-3-8b' }, '/v1/completions'))?.route.name).toBe('high')
    const n = createMatcher(m.routes.filter((r) => r.name !== 'high'))
    expect(n.match(post({ model: 'llama-3-8b' }, '/v1/completions'))?.route.name).toBe('first')
    expect(n.match(post({ model: 'llama-3-8b' }, '/v1/embeddings'))?.route.name).toBe('exact')
    expect(n.needsBody(post(undefined, '/v1/embeddings'))).toBe(false)
    expect(n.match(post({ model: 'llama-3-8b' }, '/v1/chat'))?.route.name).toBe('first') // priority -1 loses to the wildcard at 0
  })

  it('ranks body routes first among regex routes too', () => {
    const m = createMatcher([
      route('plain', { pathRegex: '^/v1/' }),
      route('llama', { pathRegex: '^/v1/', body: { model: 'llama-*' } }),
    ])
    expect(m.match(post({ model: 'llama-3' }, '/v1/x'))?.route.name).toBe('llama')
    expect(m.match(post({ model: 'qwen' }, '/v1/x'))?.route.name).toBe('plain')
  })

  it('needsBody is true only when a body route could win', () => {
    const m = createMatcher([
      route('llama', { path: '/v1/chat/completions', methods: ['POST'], body: { model: 'llama-*' } }),
      route('other', { path: '/v1/*' }),
    ])
    expect(m.needsBody(post(undefined))).toBe(true)
    expect(m.needsBody({ method: 'GET', path: '/v1/chat/completions' })).toBe(false)
    expect(m.needsBody(post(undefined, '/v1/models'))).toBe(false)
    expect(createMatcher([route('a', { path: '/*' })]).needsBody(post(undefined))).toBe(false)
  })

  it('allowedMethods ignores body conditions', () => {
    const m = createMatcher([route('llama', { path: '/v1/chat/completions', methods: ['POST'], body: { model: 'llama-*' } })])
    expect(m.allowedMethods({ method: 'GET', path: '/v1/chat/completions' })).toEqual(['POST'])
  })
})

describe('body conditions: validation', () => {
  const fields = (body: unknown): string[] =>
    validateRoute({ name: 'r', match: { path: '/x', body: body as RouteMatch['body'] }, data: null }).map((i) => `${i.field}: ${i.message}`)

  it('refuses bad shapes, naming the field', () => {
    expect(fields([])).toEqual(['match.body: must be an object of field path → condition'])
    expect(fields('model')).toEqual(['match.body: must be an object of field path → condition'])
    expect(fields({})).toEqual(['match.body: must hold at least one field condition'])
    expect(fields({ model: undefined })[0]).toMatch(/^match\.body\.model: must be a string, number/)
    expect(fields({ model: ['a'] })[0]).toMatch(/^match\.body\.model: must be a string, number/)
    expect(fields({ model: { exists: 'yes' } })).toEqual(['match.body.model: { exists } must be true or false'])
    expect(fields({ model: { exists: true, in: ['a'] } })[0]).toMatch(/^match\.body\.model: an object condition must be/)
    expect(fields({ model: { in: [] } })[0]).toMatch(/^match\.body\.model: \{ in \} must be a list of 1 to 256/)
    expect(fields({ model: { in: ['a', {}] } })).toEqual(['match.body.model: in[1]: must be a string, number, boolean or null'])
    expect(fields({ n: Number.NaN })[0]).toMatch(/^match\.body\.n: a number condition must be finite/)
  })

  it('refuses bad field paths', () => {
    expect(fields({ '': 1 })[0]).toMatch(/^match\.body\.: field path "" has an empty segment/)
    expect(fields({ 'a..b': 1 })[0]).toMatch(/has an empty segment/)
    expect(fields({ 'a.': 1 })[0]).toMatch(/has an empty segment/)
    expect(fields({ 'a\\b': 1 })[0]).toMatch(/may only escape/)
    expect(fields({ [Array.from({ length: 17 }, () => 'a').join('.')]: 1 })[0]).toMatch(/deeper than 16 segments/)
  })

  it('bounds globs and strings, and refuses unsafe regexes', () => {
    expect(fields({ model: '*a*b*c*d*e*f*g*h*' })[0]).toMatch(/has more than 8 "\*"/)
    expect(fields({ model: '*a*b*c*d*e*f*g*' })).toEqual([])
    expect(fields({ model: 'x'.repeat(1001) })[0]).toMatch(/longer than 1000 characters/)
    expect(fields({ model: /^(a+)+$/ })[0]).toMatch(/^match\.body\.model: regex \/\^\(a\+\)\+\$\/ repeats a group/)
  })

  it('createMatcher throws naming the route and the field', () => {
    expect(() => createMatcher([route('chat', { path: '/x', body: { model: { in: 'llama' } as never } })])).toThrow(
      /^route "chat": match\.body\.model: \{ in \} must be a list/,
    )
  })
})
