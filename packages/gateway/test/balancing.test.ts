// Balancing and health through the gateway, with real upstreams that slow down, fail and recover.
import { afterEach, describe, expect, it } from 'vitest'
import { registerBalancer } from '@switchboard/balancer'
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

/** An upstream that answers with its name after `delayMs`, or with `status` when set. */
async function named(name: string, state: { delayMs?: number; status?: number } = {}): Promise<TestUpstream & { state: typeof state }> {
  const u = await startUpstream((_req, res) => {
    setTimeout(() => {
      res.writeHead(state.status ?? 200, { 'content-type': 'text/plain' })
      res.end(name)
    }, state.delayMs ?? 0)
  })
  cleanup.push(() => u.close())
  return Object.assign(u, { state })
}

async function gateway(upstream: Record<string, unknown>, logs?: string[]): Promise<TestGateway> {
  const g = await startGateway(
    {
      server: { shutdownTimeout: '1s' },
      upstreams: { pool: upstream },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'pool' }],
    },
    logs ? { logger: (_level, message, fields) => logs.push(`${message} ${fields?.reason ?? ''}`) } : {},
  )
  cleanup.push(() => g.close())
  return g
}

async function spread(url: string, requests: number, concurrency: number, init?: RequestInit): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++
        const res = await fetch(url, init)
        const body = await res.text()
        const key = res.status === 200 ? body : String(res.status)
        counts[key] = (counts[key] ?? 0) + 1
      }
    }),
  )
  return counts
}

describe('gateway: latency-aware balancing', () => {
  it.each(['p2c', 'least-latency'])('%s sends most traffic to the fastest of three upstreams', async (strategy) => {
    const fast = await named('fast', { delayMs: 0 })
    const mid = await named('mid', { delayMs: 25 })
    const slow = await named('slow', { delayMs: 80 })
    const gw = await gateway({ balancer: strategy, targets: [slow.url, mid.url, fast.url] })
    const counts = await spread(`${gw.url}/x`, 200, 4)
    // Tolerance: the fastest must take the majority and beat each of the others.
    expect(counts.fast).toBeGreaterThan(100)
    expect(counts.fast).toBeGreaterThan(counts.mid ?? 0)
    expect(counts.fast).toBeGreaterThan(counts.slow ?? 0)
    const stats = gw.gateway.upstreamStats().pool
    expect(stats.map((s) => s.totalRequests).reduce((a, b) => (a as number) + (b as number), 0)).toBe(200)
    const fastStats = stats.find((s) => s.url === fast.url)!
    expect(fastStats.latencyEwmaMs).toEqual(expect.any(Number))
    expect(fastStats.inFlight).toBe(0)
  })
})

describe('gateway: health checks move traffic', () => {
  it('active checks take a dead endpoint out and put it back after recovery', async () => {
    const a = await named('a')
    const b = await named('b')
    const logs: string[] = []
    const gw = await gateway(
      {
        balancer: 'round-robin',
        targets: [a.url, b.url],
        healthCheck: { path: '/', interval: '1h', timeout: '300ms', unhealthyThreshold: 2, healthyThreshold: 2 },
      },
      logs,
    )
    const checker = gw.gateway.upstream('pool')!.checker
    expect(await spread(`${gw.url}/x`, 10, 1)).toEqual({ a: 5, b: 5 })
    a.state.status = 503
    await checker.checkNow()
    // One failed probe is below the threshold of 2: still in rotation.
    expect(gw.gateway.upstream('pool')!.candidates()).toHaveLength(2)
    await checker.checkNow()
    expect(gw.gateway.upstream('pool')!.candidates().map((e) => e.url)).toEqual([b.url])
    expect(await spread(`${gw.url}/x`, 10, 1)).toEqual({ b: 10 })
    a.state.status = 200
    await checker.checkNow()
    await checker.checkNow()
    expect(await spread(`${gw.url}/x`, 10, 1)).toEqual({ a: 5, b: 5 })
    expect(logs.some((l) => l.includes('is unhealthy') && l.includes('status 503'))).toBe(true)
    expect(logs.some((l) => l.includes('is healthy'))).toBe(true)
  })

  it('passive outlier detection ejects an endpoint that fails real traffic', async () => {
    const good = await named('good')
    const bad = await named('bad', { status: 500 })
    const gw = await gateway({
      balancer: 'round-robin',
      targets: [good.url, bad.url],
      outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '1h', maxEjectionTime: '2h', maxEjectedPercent: 50 },
    })
    const counts = await spread(`${gw.url}/x`, 40, 1)
    // Round-robin alternates until the third consecutive 500 ejects "bad"; then only "good" answers.
    expect(counts['500']).toBe(3)
    expect(counts.good).toBe(37)
    expect(gw.gateway.upstreamStats().pool.find((s) => s.url === bad.url)!.healthy).toBe(false)
  })

  it('without health checks an endpoint is never ejected, even when it only answers 500', async () => {
    const bad = await named('bad', { status: 500 })
    const gw = await gateway({ balancer: 'round-robin', targets: [bad.url] })
    const counts = await spread(`${gw.url}/x`, 20, 2)
    expect(counts).toEqual({ '500': 20 })
    expect(gw.gateway.upstream('pool')!.candidates()).toHaveLength(1)
  })
})

describe('gateway: affinity', () => {
  it('consistent-hash on a header keeps each user on one endpoint', async () => {
    const ups = await Promise.all(['a', 'b', 'c'].map((n) => named(n)))
    const gw = await gateway({
      balancer: { strategy: 'consistent-hash', options: { key: { header: 'x-user' } } },
      targets: ups.map((u) => u.url),
    })
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const counts = await spread(`${gw.url}/x`, 10, 2, { headers: { 'x-user': user } })
      expect(Object.values(counts)).toEqual([10])
    }
  })

  it('sticky-cookie sets a cookie and keeps the client on the endpoint it names', async () => {
    const ups = await Promise.all(['a', 'b'].map((n) => named(n)))
    const gw = await gateway({ balancer: { strategy: 'sticky-cookie', options: { name: 'sb' } }, targets: ups.map((u) => u.url) })
    const first = await fetch(`${gw.url}/x`)
    const owner = await first.text()
    const cookie = first.headers.get('set-cookie')!
    expect(cookie).toMatch(/^sb=/)
    expect(cookie).not.toContain('127.0.0.1')
    const counts = await spread(`${gw.url}/x`, 10, 1, { headers: { cookie: cookie.split(';')[0] } })
    expect(counts).toEqual({ [owner]: 10 })
  })
})

describe('gateway: a contributed balancer', () => {
  it('is registered in code and chosen by name in config, with its options', async () => {
    registerBalancer(
      'nth-only',
      (options) => {
        const n = Number(options.n ?? 0)
        return { name: 'nth-only', pick: (candidates) => candidates[Math.min(n, candidates.length - 1)] }
      },
      { replace: true },
    )
    const ups = await Promise.all(['a', 'b', 'c'].map((n) => named(n)))
    const gw = await gateway({ balancer: { strategy: 'nth-only', options: { n: 2 } }, targets: ups.map((u) => u.url) })
    expect(await spread(`${gw.url}/x`, 9, 3)).toEqual({ c: 9 })
  })
})
