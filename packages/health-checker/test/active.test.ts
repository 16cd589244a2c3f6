import { createEndpoint } from '@switchboard/balancer'
import { afterEach, describe, expect, it } from 'vitest'
import { createHealthChecker, type HealthChangeEvent, type HealthChecker } from '../src/index.ts'
import { closeAll, fakeClock, startUpstream } from './helpers.ts'

let checker: HealthChecker | undefined
afterEach(async () => {
  await checker?.stop()
  checker = undefined
  await closeAll()
})

describe('active probes against real upstreams', () => {
  it('marks an endpoint down after exactly unhealthyThreshold refused probes and up after healthyThreshold', async () => {
    const upstream = await startUpstream()
    const ep = createEndpoint({ url: upstream.url })
    const events: HealthChangeEvent[] = []
    checker = createHealthChecker({
      endpoints: [ep],
      active: { unhealthyThreshold: 3, healthyThreshold: 2 },
      onChange: (e) => events.push(e),
    })
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
    expect(ep.probeLatencyMs).toBeGreaterThanOrEqual(0)

    await upstream.down()
    await checker.checkNow()
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
    expect(events).toEqual([])
    await checker.checkNow()
    expect(ep.healthy).toBe(false)
    expect(checker.healthy()).toEqual([])
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ endpoint: ep, healthy: false, source: 'active' })
    expect(events[0].reason).toBe('active: 3 consecutive failures (ECONNREFUSED)')

    await upstream.up()
    await checker.checkNow()
    expect(ep.healthy).toBe(false)
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
    expect(checker.healthy()).toEqual([ep])
    expect(events.map((e) => [e.healthy, e.reason])).toEqual([
      [false, 'active: 3 consecutive failures (ECONNREFUSED)'],
      [true, 'active: 2 consecutive successes'],
    ])
  })

  it('starts the failure count over after a success', async () => {
    const upstream = await startUpstream()
    const ep = createEndpoint({ url: upstream.url })
    checker = createHealthChecker({ endpoints: [ep], active: { unhealthyThreshold: 3 } })
    upstream.mode = { kind: 'ok', status: 500 }
    await checker.checkNow()
    await checker.checkNow()
    upstream.mode = { kind: 'ok' }
    await checker.checkNow()
    upstream.mode = { kind: 'ok', status: 500 }
    await checker.checkNow()
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
    await checker.checkNow()
    expect(ep.healthy).toBe(false)
    expect(upstream.requests).toBe(6)
  })

  it('counts a 500 as a failure and says so', async () => {
    const upstream = await startUpstream({ kind: 'ok', status: 500 })
    const ep = createEndpoint({ url: upstream.url })
    const events: HealthChangeEvent[] = []
    checker = createHealthChecker({ endpoints: [ep], active: { unhealthyThreshold: 1 }, onChange: (e) => events.push(e) })
    await checker.checkNow()
    expect(ep.healthy).toBe(false)
    expect(ep.probeLatencyMs).toBeNaN()
    expect(events[0].reason).toBe('active: 1 consecutive failure (status 500)')
  })

  it('fails a probe that gets no response head within timeoutMs', async () => {
    const upstream = await startUpstream({ kind: 'hang' })
    const ep = createEndpoint({ url: upstream.url })
    const events: HealthChangeEvent[] = []
    checker = createHealthChecker({
      endpoints: [ep],
      active: { unhealthyThreshold: 1, timeoutMs: 50 },
      onChange: (e) => events.push(e),
    })
    await checker.checkNow()
    expect(ep.healthy).toBe(false)
    expect(events[0].reason).toBe('active: 1 consecutive failure (timeout after 50ms)')
  })

  it('uses path, method, headers and expectStatus', async () => {
    const upstream = await startUpstream({ kind: 'ok', status: 204 })
    const ep = createEndpoint({ url: `${upstream.url}/prefix/` })
    checker = createHealthChecker({
      endpoints: [ep],
      active: { path: '/healthz', method: 'GET', headers: { 'x-probe': '1' }, expectStatus: [200], unhealthyThreshold: 1 },
    })
    const seen = upstream.nextRequest()
    await checker.checkNow()
    const req = await seen
    expect([req.method, req.url, req.headers['x-probe'], req.headers['user-agent']]).toEqual([
      'GET',
      '/prefix/healthz',
      '1',
      'switchboard-health-checker',
    ])
    expect(ep.healthy).toBe(false) // 204 is not in [200]
  })

  it('accepts 3xx by default without following the redirect', async () => {
    const upstream = await startUpstream({ kind: 'ok', status: 302 })
    const ep = createEndpoint({ url: upstream.url })
    checker = createHealthChecker({ endpoints: [ep], active: { unhealthyThreshold: 1 } })
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
    expect(upstream.requests).toBe(1)
    expect(ep.probeLatencyMs).toBeGreaterThanOrEqual(0)
  })

  it('starts endpoints down with initiallyHealthy: false until healthyThreshold probes pass', async () => {
    const upstream = await startUpstream()
    const ep = createEndpoint({ url: upstream.url })
    checker = createHealthChecker({ endpoints: [ep], initiallyHealthy: false, active: { healthyThreshold: 2 } })
    expect([ep.healthy, checker.healthy().length]).toEqual([false, 0])
    await checker.checkNow()
    expect(ep.healthy).toBe(false)
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
  })

  it('never runs two probes at once for one endpoint', async () => {
    const upstream = await startUpstream({ kind: 'ok', delayMs: 30 })
    const ep = createEndpoint({ url: upstream.url })
    checker = createHealthChecker({ endpoints: [ep], active: {} })
    const first = checker.checkNow()
    const second = checker.checkNow()
    await Promise.all([first, second])
    expect(upstream.requests).toBe(1)
    expect(upstream.maxConcurrent).toBe(1)
  })

  it('probes on its own after start(), one at a time, and stops when asked', async () => {
    const upstream = await startUpstream({ kind: 'ok', status: 500 })
    const ep = createEndpoint({ url: upstream.url })
    const down = new Promise<HealthChangeEvent>((resolve) => {
      checker = createHealthChecker({
        endpoints: [ep],
        active: { intervalMs: 5, jitterRatio: 0.5, unhealthyThreshold: 3 },
        onChange: resolve,
      })
    })
    checker!.start()
    checker!.start() // idempotent
    const event = await down
    expect(event.reason).toBe('active: 3 consecutive failures (status 500)')
    await checker!.stop()
    const after = upstream.requests
    expect(after).toBeGreaterThanOrEqual(3)
    expect(upstream.maxConcurrent).toBe(1)
    // Nothing left scheduled: one more round trip to the upstream sees no new probe.
    await fetch(upstream.url).then((r) => r.arrayBuffer())
    expect(upstream.requests).toBe(after + 1)
    expect(() => checker!.start()).toThrow(/stopped/)
  })

  it('schedules each probe intervalMs ± jitterRatio after the previous one ends', async () => {
    const upstream = await startUpstream()
    const ep = createEndpoint({ url: upstream.url })
    const clock = fakeClock()
    let roll = 1 // the jitter's random(): 1 is the longest delay, 0 the shortest
    checker = createHealthChecker({
      endpoints: [ep],
      active: { intervalMs: 1_000, jitterRatio: 0.1 },
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
      random: () => roll,
    })
    const probesAfter = async (ms: number): Promise<number> => {
      clock.advance(ms)
      await checker!.checkNow() // joins the probe the timer started, if any, so it has finished
      return upstream.requests
    }
    checker.start()
    // first probe: spread over [0, intervalMs × jitterRatio)
    clock.advance(99)
    expect(upstream.requests).toBe(0)
    expect(await probesAfter(1)).toBe(1)
    // next one 1000 + 10% after the first ended
    clock.advance(1_099)
    expect(upstream.requests).toBe(1)
    roll = 0
    expect(await probesAfter(1)).toBe(2)
    // and then 1000 − 10% after that
    clock.advance(899)
    expect(upstream.requests).toBe(2)
    expect(await probesAfter(1)).toBe(3)
  })

  it('stop() aborts an in-flight probe, ignores its result and leaves no timers', async () => {
    const upstream = await startUpstream({ kind: 'hang' })
    const ep = createEndpoint({ url: upstream.url })
    const clock = fakeClock()
    const events: HealthChangeEvent[] = []
    checker = createHealthChecker({
      endpoints: [ep],
      active: { unhealthyThreshold: 1, intervalMs: 1_000 },
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
      onChange: (e) => events.push(e),
    })
    checker.start()
    expect(clock.pending).toBe(1) // the first probe, due now (jitter only)
    const arrived = upstream.nextRequest()
    clock.advance(100)
    await arrived
    const probe = checker.checkNow() // joins the probe in flight
    await checker.stop() // the fake timeout never fires: only the abort can end the probe
    await probe
    expect(clock.pending).toBe(0)
    expect(events).toEqual([])
    expect(ep.healthy).toBe(true)
    expect(upstream.requests).toBe(1)
    await checker.checkNow() // no-op after stop
    expect(upstream.requests).toBe(1)
  })

  it('getFastest() picks the healthy endpoint with the lower probe latency', async () => {
    const slow = await startUpstream({ kind: 'ok', delayMs: 50 })
    const fast = await startUpstream()
    const slowEp = createEndpoint({ url: slow.url })
    const fastEp = createEndpoint({ url: fast.url })
    checker = createHealthChecker({ endpoints: [slowEp, fastEp], active: { unhealthyThreshold: 1 } })
    expect(checker.getFastest()).toBe(slowEp) // no probe yet: first healthy one
    await checker.checkNow()
    await checker.checkNow()
    expect(fastEp.probeLatencyMs).toBeLessThan(slowEp.probeLatencyMs)
    expect(checker.getFastest()).toBe(fastEp)
    await fast.down()
    await checker.checkNow()
    expect(checker.getFastest()).toBe(slowEp)
    await slow.down()
    await checker.checkNow()
    expect(checker.getFastest()).toBeUndefined()
  })
})
