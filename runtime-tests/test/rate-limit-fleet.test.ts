// A fleet: two built gateway CLI processes (same runtime as this test: Node, Bun or Deno) sharing one
// rate limit through one real Redis. Exactly N requests pass across both; with Redis stopped
// mid-test each gateway follows its store's failMode instead of hanging.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type RedisServer, redisServerInstalled, startRedis } from '../../scripts/redis-server.mjs'
import { type GatewayProcess, RUNTIME, startGatewayProcess } from './harness.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

async function upstream(): Promise<number> {
  const server: Server = createServer((_req, res) => res.end('ok'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(() => new Promise<void>((r) => (server.closeAllConnections?.(), server.close(() => r()))))
  return (server.address() as AddressInfo).port
}

async function gateway(yaml: string): Promise<GatewayProcess> {
  const gw = await startGatewayProcess(yaml)
  cleanup.push(() => gw.stop('SIGKILL'))
  return gw
}

const N = 20

function fleetYaml(upstreamPort: number, redisUrl: string, failMode: 'open' | 'closed', prefix: string): string {
  return `server:
  host: 127.0.0.1
  port: 8080
  shutdownTimeout: 1s
store:
  driver: redis
  url: ${redisUrl}
  keyPrefix: "${prefix}"
  failMode: ${failMode}
  commandTimeoutMs: 300
  maxReconnectDelayMs: 50
policies:
  shared:
    use: rate-limit
    algorithm: sliding-window-log
    limit: ${N}/h
    key: header:x-tenant
  burst:
    use: rate-limit
    algorithm: token-bucket
    limit: 1/h
    burst: ${N}
    key: header:x-tenant
upstreams:
  backend:
    balancer: round-robin
    targets:
      - url: http://127.0.0.1:${upstreamPort}
    timeouts:
      connect: 2s
      response: 2s
routes:
  - name: log
    match: { path: /log/* }
    upstream: backend
    policies: [shared]
  - name: bucket
    match: { path: /bucket/* }
    upstream: backend
    policies: [burst]
`
}

/** Sends `count` requests spread over the gateways, all at once; returns their statuses and one 429's headers. */
async function burst(gws: GatewayProcess[], path: string, count: number, tenant: string) {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await fetch(`${gws[i % gws.length]!.url}${path}`, { headers: { 'x-tenant': tenant }, signal: AbortSignal.timeout(10_000) })
      return { status: res.status, retryAfter: res.headers.get('retry-after'), rateLimit: res.headers.get('ratelimit'), body: await res.text() }
    }),
  )
}

// Locally a missing redis-server skips this file; under CI startRedis() throws and the tests fail.
const skip = !process.env.CI && !redisServerInstalled()

describe.skipIf(skip)(`rate-limit fleet on ${RUNTIME}`, () => { // skipped only when redis-server is not installed locally: apt-get install -y redis-server
  let redis: RedisServer | undefined
  afterEach(async () => {
    await redis?.stop()
    redis = undefined
  })

  it(`two gateway processes share one limit: exactly ${N} pass across both (sliding log and token bucket)`, async () => {
    redis = await startRedis()
    const port = await upstream()
    const prefix = `fleet-${Math.random().toString(36).slice(2)}:`
    const gws = await Promise.all([gateway(fleetYaml(port, redis.url, 'closed', prefix)), gateway(fleetYaml(port, redis.url, 'closed', prefix))])
    for (const path of ['/log/x', '/bucket/x']) {
      const results = await burst(gws, path, 3 * N, 't1')
      expect(results.filter((r) => r.status === 200), path).toHaveLength(N)
      const limited = results.filter((r) => r.status === 429)
      expect(limited, path).toHaveLength(2 * N)
      for (const r of limited) {
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
        expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'ERR_RATE_LIMITED' } })
        expect(r.rateLimit).toMatch(/r=0;t=\d+/)
      }
      // Another tenant has its own allowance on both gateways.
      expect((await burst(gws, path, 2, 't2')).map((r) => r.status)).toEqual([200, 200])
    }
  })

  it('Redis stopped mid-test: failMode closed answers 503, open allows; neither hangs', async () => {
    redis = await startRedis()
    const port = await upstream()
    const prefix = `fleet-down-${Math.random().toString(36).slice(2)}:`
    const closed = await gateway(fleetYaml(port, redis.url, 'closed', prefix))
    const open = await gateway(fleetYaml(port, redis.url, 'open', prefix))
    expect((await burst([closed, open], '/log/x', 4, 't')).map((r) => r.status)).toEqual([200, 200, 200, 200])
    await redis.stop()
    redis = undefined
    const down = await burst([closed], '/log/x', 5, 't')
    expect(down.map((r) => r.status)).toEqual([503, 503, 503, 503, 503])
    expect(JSON.parse(down[0]!.body)).toMatchObject({ error: { code: 'ERR_SERVICE_UNAVAILABLE' } })
    const allowed = await burst([open], '/log/x', 3 * N, 't') // well past the limit: nothing is counted while Redis is away
    expect(allowed.every((r) => r.status === 200)).toBe(true)
    expect(open.output()).toMatch(/store unavailable, allowing requests/)
  })
})
