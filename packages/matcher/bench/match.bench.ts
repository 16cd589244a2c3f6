// match() throughput for 10, 100 and 1000 routes mixing static, param and wildcard patterns.
// Run: npx vitest bench --run packages/matcher   (from the repo root)
import { bench, describe } from 'vitest'
import { createMatcher, type MatchInput, type RouteDefinition } from '../src/index.ts'

for (const size of [10, 100, 1000]) {
  const routes: RouteDefinition<number>[] = []
  for (let i = 0; routes.length < size; i++) {
    routes.push({ name: `static-${i}`, match: { path: `/svc${i}/items` }, data: i })
    routes.push({ name: `param-${i}`, match: { path: `/svc${i}/items/:id`, methods: ['GET'] }, data: i })
    routes.push({ name: `wild-${i}`, match: { path: `/svc${i}/files/*` }, data: i })
    routes.push({ name: `host-${i}`, match: { path: `/svc${i}/*`, host: `*.svc${i}.example.com` }, data: i })
  }
  routes.length = size
  const matcher = createMatcher(routes)
  const last = Math.floor((size - 1) / 4)
  const inputs: Record<string, MatchInput> = {
    static: { method: 'GET', path: `/svc${last}/items` },
    param: { method: 'GET', path: `/svc${last}/items/12345` },
    wildcard: { method: 'GET', path: `/svc${last}/files/a/b/c.txt` },
    'normalised (%61, ..)': { method: 'GET', path: `/svc${last}/x/../items/%61bc` },
    miss: { method: 'GET', path: '/nothing/here' },
  }
  describe(`${size} routes`, () => {
    for (const [label, input] of Object.entries(inputs)) {
      bench(label, () => {
        matcher.match(input)
      })
    }
  })
}

// Model routing: one path, eight pools chosen by globs on the body's `model`, the last one winning.
{
  const pools = ['gpt-*', 'claude-*', 'mistral-*', 'phi-*', 'gemma-*', 'qwen-*', 'deepseek-*', 'llama-3-*-instruct']
  const matcher = createMatcher([
    ...pools.map((model, i) => ({ name: `pool-${i}`, match: { path: '/v1/chat/completions', body: { model, stream: { exists: true } } }, data: i })),
    { name: 'fallback', match: { path: '/v1/chat/completions' }, data: -1 },
  ])
  const input: MatchInput = { method: 'POST', path: '/v1/chat/completions', body: { model: 'llama-3-70b-instruct', stream: true, messages: [] } }
  describe('body conditions (8 glob routes on one path)', () => {
    bench('last pool matches', () => {
      matcher.match(input)
    })
    bench('no pool matches (fallback)', () => {
      matcher.match({ ...input, body: { model: 'unknown' } })
    })
  })
}
