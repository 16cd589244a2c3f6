import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { definePolicy } from '@switchboard/core'
import { rateLimitPolicy, type RateLimitOptions } from '@switchboard/policies'
import { type RedisServer, redisServerInstalled, startRedis } from '../../../scripts/redis-server.mjs'
import { GatewayRegistry } from '../src/index.ts'
import { simpleConfig, useFixtures } from './helpers.ts'

const { upstream, gateway } = useFixtures()

// Until the lead registers rate-limit in builtinPolicies, register it here (the config contract is the real one).
function registryWith(now?: () => number): GatewayRegistry {
  const registry = new GatewayRegistry()
  registry.registerPolicy(
    now === undefined
      ? rateLimitPolicy
      : definePolicy<RateLimitOptions>({ ...rateLimitPolicy, create: (options, ctx) => rateLimitPolicy.create({ ...options, now }, ctx) }),
    { replace: true },
  )
  return registry
}

const T0 = 1_699_999_200_000 // hour-aligned: a fixed-window minute starts here

async function limitedGateway(policy: Record<string, unknown>, extra: Record<string, unknown> = {}, now?: () => number) {
  const up = await upstream((_req, res) => res.end('ok'))
  const raw = simpleConfig([up.url], { route: { policies: ['limited'] } })
  return gateway({ ...raw, policies: { limited: { use: 'rate-limit', ...policy } }, ...extra }, { registry: registryWith(now) })
}

describe('rate-limit through the gateway (real sockets)', () => {
  it('200 concurrent requests against 50/min fixed-window: exactly 50 pass, 150 get 429 with Retry-After and the JSON error', async () => {
    const gw = await limitedGateway({ algorithm: 'fixed-window', limit: '50/min', key: 'ip' }, {}, () => T0 + 15_000)
    const responses = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const res = await fetch(`${gw.url}/x`)
        return { status: res.status, headers: res.headers, body: await res.text() }
      }),
    )
    const ok = responses.filter((r) => r.status === 200)
    const limited = responses.filter((r) => r.status === 429)
    expect(ok).toHaveLength(50)
    expect(limited).toHaveLength(150)
    for (const r of limited) {
      expect(r.headers.get('retry-after')).toBe('45')
      expect(r.headers.get('content-type')).toMatch(/application\/json/)
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'ERR_RATE_LIMITED' } })
      expect(r.headers.get('ratelimit')).toBe('"limited";r=0;t=45')
      expect(r.headers.get('ratelimit-policy')).toBe('"limited";q=50;w=60')
    }
    // Every remaining count from 49 down to 0 was handed out exactly once.
    expect(ok.map((r) => Number(/r=(\d+)/.exec(r.headers.get('ratelimit') ?? '')?.[1])).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('the RateLimit header counts down request by request and the window reset follows the clock', async () => {
    let now = T0
    const gw = await limitedGateway({ algorithm: 'fixed-window', limit: '3/min' }, {}, () => now)
    const seen: (string | null)[] = []
    for (let i = 0; i < 4; i++) {
      now += 10_000
      const res = await fetch(`${gw.url}/x`)
      await res.text()
      seen.push(`${res.status} ${res.headers.get('ratelimit')}`)
    }
    expect(seen).toEqual(['200 "limited";r=2;t=50', '200 "limited";r=1;t=40', '200 "limited";r=0;t=30', '429 "limited";r=0;t=20'])
    now = T0 + 60_000
    const next = await fetch(`${gw.url}/x`)
    await next.text()
    expect(next.status).toBe(200)
    expect(next.headers.get('ratelimit')).toBe('"limited";r=2;t=60')
  })

  it('token bucket keyed by header: clients are counted apart, headers: false leaves only Retry-After', async () => {
    const gw = await limitedGateway({ algorithm: 'token-bucket', limit: '1/s', burst: 2, key: 'header:x-client-id', headers: false }, {}, () => T0)
    const hit = async (id: string) => {
      const res = await fetch(`${gw.url}/x`, { headers: { 'x-client-id': id } })
      await res.text()
      return [res.status, res.headers.get('retry-after'), res.headers.get('ratelimit')]
    }
    expect(await hit('a')).toEqual([200, null, null])
    expect(await hit('a')).toEqual([200, null, null])
    expect(await hit('a')).toEqual([429, '1', null])
    expect(await hit('b')).toEqual([200, null, null])
  })
})

// Locally a missing redis-server skips this block; under CI startRedis() throws and the tests fail.
const skip = !process.env.CI && !redisServerInstalled()

describe.skipIf(skip)('rate-limit on a Redis store through the gateway', () => { // skipped only when redis-server is not installed locally
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('two gateways on one Redis share the limit; Redis down → closed answers 503, open allows', async () => {
    const prefix = `gw-${Math.random().toString(36).slice(2)}:`
    const store = (failMode: string) => ({ store: { driver: 'redis', url: redis.url, keyPrefix: prefix, failMode, commandTimeoutMs: 300, maxReconnectDelayMs: 50 } })
    const policy = { algorithm: 'sliding-window-log', limit: '10/h' }
    const a = await limitedGateway(policy, store('closed'))
    const b = await limitedGateway(policy, store('open'))
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => fetch(`${(i % 2 ? a : b).url}/x`).then(async (r) => (await r.text(), r.status))))
    expect(statuses.filter((s) => s === 200)).toHaveLength(10)
    expect(statuses.filter((s) => s === 429)).toHaveLength(20)
    await redis.stop()
    const down = await fetch(`${a.url}/x`)
    expect(down.status).toBe(503)
    expect(JSON.parse(await down.text())).toMatchObject({ error: { code: 'ERR_SERVICE_UNAVAILABLE' } })
    const open = await fetch(`${b.url}/x`)
    await open.text()
    expect(open.status).toBe(200)
    expect(open.headers.get('ratelimit')).toBeNull()
  })
})
