// Property-style check: the compiled tree against a naive linear implementation of the documented
// precedence, on generated routes and paths from a seeded PRNG.
import { describe, expect, it } from 'vitest'
import { createMatcher, normalizePath, type MatchInput, type RouteDefinition } from '../src/index.ts'

type Route = RouteDefinition<number>
type Options = { readonly strictTrailingSlash: boolean; readonly caseSensitive: boolean }

describe('compiled matcher vs naive reference', () => {
  for (const [seed, options] of [
    [1, { strictTrailingSlash: true, caseSensitive: true }],
    [2, { strictTrailingSlash: false, caseSensitive: true }],
    [3, { strictTrailingSlash: true, caseSensitive: false }],
  ] as const) {
    it(`agrees on 6000 generated requests (${JSON.stringify(options)})`, () => {
      const rand = mulberry32(seed)
      let checked = 0
      let matched = 0
      for (let trial = 0; trial < 120; trial++) {
        const routes = generateRoutes(rand, 1 + Math.floor(rand() * 30))
        const matcher = createMatcher(routes, options)
        for (let n = 0; n < 50; n++) {
          const input = generateInput(rand)
          const expected = reference(routes, input, options, false)
          const actual = matcher.match(input)
          expect({ input, route: actual?.route.name, params: actual?.params }).toEqual({
            input,
            route: expected?.route.name,
            params: expected?.params,
          })
          const { body: _, ...withoutBody } = input
          const best = reference(routes, withoutBody, options, true)?.route.match
          expect(matcher.needsBody(withoutBody)).toBe(best !== undefined && (best.payload !== undefined || best.body !== undefined))
          checked++
          if (actual) matched++
        }
      }
      expect(checked).toBe(6000)
      expect(matched).toBeGreaterThan(1500) // the generator produces a useful mix of hits and misses
      expect(matched).toBeLessThan(5500)
    })
  }
})

describe('normalizePath properties', () => {
  it('is idempotent and its output never holds a dot segment or an empty segment', () => {
    const rand = mulberry32(7)
    const alphabet = ['/', '/', '.', '.', '%2e', '%2E', '%2f', '%5c', '%25', '%41', '%', 'a', 'b', ';', '\\', '~', '%zz', '%00']
    let accepted = 0
    for (let n = 0; n < 5000; n++) {
      let raw = '/'
      const length = 1 + Math.floor(rand() * 10)
      for (let j = 0; j < length; j++) raw += pick(rand, alphabet)
      const once = normalizePath(raw)
      if (once === undefined) continue
      accepted++
      expect({ raw, twice: normalizePath(once) }).toEqual({ raw, twice: once })
      const inner = once.split('/').slice(1, -1)
      expect({ raw, bad: inner.filter((s) => s === '' || s === '.' || s === '..') }).toEqual({ raw, bad: [] })
      expect(once.at(-1) === '/' ? once.slice(0, -1).split('/').at(-1) : once.split('/').at(-1)).not.toMatch(/^\.\.?$/)
    }
    expect(accepted).toBeGreaterThan(1000)
  })
})

function generateRoutes(rand: () => number, count: number): Route[] {
  const routes: Route[] = []
  for (let i = 0; i < count; i++) {
    const match: Route['match'] = {}
    const kind = rand()
    if (kind < 0.1) {
      match.pathRegex = pick(rand, ['^/a(/|$)', '^/(?<first>[^/]+)/b$', '^/c/', '^/$'])
    } else if (kind < 0.95) {
      const segments: string[] = []
      const length = Math.floor(rand() * 4)
      for (let j = 0; j < length; j++) segments.push(rand() < 0.35 ? `:p${j}` : pick(rand, ['a', 'b', 'c', 'A']))
      let path = '/' + segments.join('/')
      const tail = rand()
      if (tail < 0.25) path += (path === '/' ? '' : '/') + '*'
      else if (tail < 0.35) path += (path === '/' ? '' : '/') + '*rest'
      else if (tail < 0.45 && path !== '/') path += '/'
      match.path = path
    } // else: no path condition
    if (rand() < 0.3) match.methods = [pick(rand, ['GET', 'POST'])]
    if (rand() < 0.15) match.payload = [{ k: Math.floor(rand() * 2) }]
    else if (rand() < 0.15) match.body = { k: pick(rand, [0, 1, { in: [0, 2] }, { exists: true }, { exists: false }]) }
    const route: Route = { name: `r${i}`, match, data: i }
    if (rand() < 0.15) route.priority = Math.floor(rand() * 3) - 1
    routes.push(route)
  }
  return routes
}

function generateInput(rand: () => number): MatchInput {
  const segments: string[] = []
  const length = Math.floor(rand() * 5)
  for (let j = 0; j < length; j++) segments.push(pick(rand, ['a', 'b', 'c', 'A', 'd', '', '%41', '%61', 'x%20y', '%FF', '.', '..', 'a%2Fb']))
  const input: MatchInput = { method: pick(rand, ['GET', 'POST']), path: '/' + segments.join('/') }
  if (rand() < 0.5) input.body = { k: Math.floor(rand() * 3) }
  return input
}

/** The documented precedence, computed the slow way: filter every route, sort, take the first. */
function reference(routes: Route[], input: MatchInput, options: Options, ignorePayload: boolean): { route: Route; params: Record<string, string> } | undefined {
  let path = normalizePath(input.path)
  if (path === undefined) return undefined
  if (!options.strictTrailingSlash && path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
  const candidates: { route: Route; params: Record<string, string>; regex: number; key: number[]; index: number }[] = []
  routes.forEach((route, index) => {
    const match = route.match
    if (match.methods && !match.methods.includes(input.method)) return
    if (match.payload && !ignorePayload && !match.payload.some((p) => JSON.stringify(p) === JSON.stringify(input.body))) return
    if (match.body && !ignorePayload && !bodyHolds(match.body.k, input.body)) return
    if (match.pathRegex !== undefined) {
      const m = new RegExp(match.pathRegex).exec(path)
      if (!m) return
      const params: Record<string, string> = {}
      for (const [name, value] of Object.entries(m.groups ?? {})) {
        const decoded = safeDecode(value)
        if (decoded === undefined) return
        params[name] = decoded
      }
      candidates.push({ route, params, regex: 1, key: [], index })
      return
    }
    if (match.path === undefined) {
      candidates.push({ route, params: {}, regex: 0, key: [2], index })
      return
    }
    const result = matchPattern(match.path, path, options)
    if (result) candidates.push({ route, ...result, regex: 0, index })
  })
  candidates.sort(
    (x, y) => (y.route.priority ?? 0) - (x.route.priority ?? 0) || x.regex - y.regex || compareKeys(x.key, y.key) || bodyRank(y.route) - bodyRank(x.route) || x.index - y.index,
  )
  return candidates[0]
}

/** Routes with a payload or body condition come before those without, at equal priority and path. */
function bodyRank(route: Route): number {
  return route.match.payload !== undefined || route.match.body !== undefined ? 1 : 0
}

/** The generated `body.k` conditions, evaluated the obvious way. */
function bodyHolds(cond: unknown, body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false // not a JSON object: no condition holds
  const value = (body as { k?: unknown }).k
  if (typeof cond === 'number') return value === cond
  if ((cond as { in?: unknown[] }).in) return (cond as { in: unknown[] }).in.includes(value)
  return (value !== undefined) === (cond as { exists: boolean }).exists
}

function matchPattern(pattern: string, path: string, options: Options): { params: Record<string, string>; key: number[] } | undefined {
  let parts = pattern.split('/').slice(1)
  if (!options.strictTrailingSlash && parts.length > 1 && parts.at(-1) === '') parts = parts.slice(0, -1)
  const segs = path.split('/').slice(1)
  const params: Record<string, string> = {}
  const key: number[] = []
  for (let j = 0; j < parts.length; j++) {
    const part = parts[j]
    if (part.startsWith('*')) {
      const value = safeDecode(segs.slice(j).join('/'))
      if (value === undefined) return undefined
      params[part === '*' ? '*' : part.slice(1)] = value
      key.push(2)
      return { params, key }
    }
    if (j >= segs.length) return undefined
    if (part.startsWith(':')) {
      if (segs[j] === '') return undefined
      const value = safeDecode(segs[j])
      if (value === undefined) return undefined
      params[part.slice(1)] = value
      key.push(1)
    } else {
      const same = options.caseSensitive ? segs[j] === part : segs[j].toLowerCase() === part.toLowerCase()
      if (!same) return undefined
      key.push(0)
    }
  }
  if (segs.length !== parts.length) return undefined
  key.push(-1)
  return { params, key }
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

function pick<V>(rand: () => number, items: readonly V[]): V {
  return items[Math.floor(rand() * items.length)]
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
