import { createEndpoint, type EndpointState } from '@switchboard/balancer'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createHealthChecker,
  type HealthChangeEvent,
  type HealthChecker,
  type HealthCheckerOptions,
} from '../src/index.ts'
import { closeAll, fakeClock, startUpstream, type FakeClock } from './helpers.ts'

let checker: HealthChecker | undefined
afterEach(async () => {
  await checker?.stop()
  checker = undefined
  await closeAll()
})

function setup(
  overrides: Partial<HealthCheckerOptions> = {},
  count = 2,
): { clock: FakeClock; eps: EndpointState[]; events: HealthChangeEvent[]; checker: HealthChecker } {
  const clock = fakeClock(1_000_000)
  const eps = Array.from({ length: count }, (_, i) => createEndpoint({ url: `http://127.0.0.1:${9000 + i}`, weight: 10 }))
  const events: HealthChangeEvent[] = []
  checker = createHealthChecker({
    endpoints: eps,
    passive: { consecutiveFailures: 3, baseEjectionMs: 1_000, maxEjectionMs: 10_000 },
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    onChange: (e) => events.push(e),
    ...overrides,
  })
  return { clock, eps, events, checker }
}

const fail = { ok: false, status: 502 }
const ok = { ok: true, status: 200, latencyMs: 3 }

describe('passive outlier detection', () => {
  it('ejects after exactly consecutiveFailures and returns when the ejection expires', () => {
    const { clock, eps, events, checker } = setup()
    const [a, b] = eps
    checker.observe(a, fail)
    checker.observe(a, fail)
    checker.observe(a, ok) // resets the run
    checker.observe(a, fail)
    checker.observe(a, fail)
    expect(a.healthy).toBe(true)
    checker.observe(a, fail)
    expect(a.healthy).toBe(false)
    expect(checker.healthy()).toEqual([b])
    expect(events).toEqual([{ endpoint: a, healthy: false, reason: 'passive: 3 consecutive failures', source: 'passive' }])

    clock.advance(999)
    expect(a.healthy).toBe(false)
    clock.advance(1)
    expect(a.healthy).toBe(true)
    expect(checker.healthy()).toEqual([a, b])
    expect(events[1]).toEqual({ endpoint: a, healthy: true, reason: 'ejection expired', source: 'passive' })
  })

  it('ejects on the failure rate over the window once minRequests is reached', () => {
    const { eps, events, checker } = setup({
      passive: { consecutiveFailures: 100, failureRate: 0.5, minRequests: 10, windowMs: 10_000 },
    })
    const [a] = eps
    for (let i = 0; i < 4; i++) {
      checker.observe(a, ok)
      checker.observe(a, fail)
    }
    checker.observe(a, ok)
    expect(a.healthy).toBe(true) // 4 of 9: below minRequests
    checker.observe(a, fail)
    expect(a.healthy).toBe(false)
    expect(events[0].reason).toBe('passive: failure rate 0.50 over 10 requests')
  })

  it('forgets outcomes older than windowMs', () => {
    const { clock, eps, checker } = setup({
      passive: { consecutiveFailures: 100, failureRate: 0.5, minRequests: 10, windowMs: 10_000 },
    })
    const [a] = eps
    for (let i = 0; i < 8; i++) checker.observe(a, fail)
    checker.observe(a, ok)
    clock.advance(11_000)
    for (let i = 0; i < 4; i++) checker.observe(a, ok)
    for (let i = 0; i < 4; i++) checker.observe(a, fail)
    expect(a.healthy).toBe(true) // 4 of 8 in the window: below minRequests
    checker.observe(a, ok)
    checker.observe(a, fail)
    expect(a.healthy).toBe(false) // 5 of 10
  })

  it('ejects for longer each time, up to maxEjectionMs, and forgives after a quiet spell', () => {
    const { clock, eps, checker } = setup({
      passive: { consecutiveFailures: 1, baseEjectionMs: 1_000, maxEjectionMs: 2_500 },
    })
    const [a] = eps
    const ejectionLength = (): number => {
      checker.observe(a, fail)
      expect(a.healthy).toBe(false)
      let waited = 0
      while (!a.healthy) {
        clock.advance(100)
        waited += 100
      }
      return waited
    }
    expect([ejectionLength(), ejectionLength(), ejectionLength(), ejectionLength()]).toEqual([1_000, 2_000, 2_500, 2_500])
    clock.advance(2_500)
    expect(ejectionLength()).toBe(1_000)
  })

  it('never ejects more than maxEjectedPercent of the endpoints', () => {
    const { clock, eps, events, checker } = setup({ passive: { consecutiveFailures: 1, maxEjectedPercent: 50 } }, 4)
    for (const ep of eps) checker.observe(ep, fail)
    expect(eps.map((ep) => ep.healthy)).toEqual([false, false, true, true])
    expect(events).toHaveLength(2)
    clock.advance(30_000)
    checker.observe(eps[2], fail) // room again
    expect(eps.map((ep) => ep.healthy)).toEqual([true, true, false, true])
  })

  it('always keeps at least one endpoint in', () => {
    const single = setup({ passive: { consecutiveFailures: 1, maxEjectedPercent: 100 } }, 1)
    for (let i = 0; i < 10; i++) single.checker.observe(single.eps[0], fail)
    expect(single.eps[0].healthy).toBe(true)
    void single.checker.stop()

    const pair = setup({ passive: { consecutiveFailures: 1, maxEjectedPercent: 100 } }, 2)
    for (const ep of pair.eps) pair.checker.observe(ep, fail)
    expect(pair.eps.map((ep) => ep.healthy)).toEqual([false, true])
  })

  it('never ejects without passive options, and ignores unknown endpoints', () => {
    const { eps, events, checker } = setup({ passive: undefined })
    for (let i = 0; i < 100; i++) checker.observe(eps[0], fail)
    checker.observe(createEndpoint({ url: 'http://127.0.0.1:1' }), fail)
    expect(eps[0].healthy).toBe(true)
    expect(events).toEqual([])
  })

  it('ramps a returning endpoint from 10% to its configured weight over slowStartMs', () => {
    const { clock, eps, checker } = setup({ slowStartMs: 1_000 })
    const [a] = eps
    for (let i = 0; i < 3; i++) checker.observe(a, fail)
    clock.advance(1_000) // ejection expires
    expect(a.healthy).toBe(true)
    expect(a.weight).toBeCloseTo(1)
    clock.advance(500)
    expect(a.weight).toBeCloseTo(5.5)
    clock.advance(500)
    expect(a.weight).toBe(10)
    expect(clock.pending).toBe(0)
  })

  it('restores weights held down by slow start on stop() and leaves no timers', async () => {
    const { clock, eps, checker } = setup({ slowStartMs: 1_000, passive: { consecutiveFailures: 3, baseEjectionMs: 1_000, maxEjectedPercent: 100 } }, 3)
    const [a, b] = eps
    for (let i = 0; i < 3; i++) checker.observe(a, fail)
    for (let i = 0; i < 3; i++) checker.observe(b, fail)
    clock.advance(1_200)
    expect([a.weight, b.weight].map((w) => w.toFixed(1))).toEqual(['2.8', '2.8'])
    for (let i = 0; i < 3; i++) checker.observe(b, fail) // out again mid-ramp: its ramp stops where it was
    expect(b.healthy).toBe(false)
    clock.advance(100)
    expect(b.weight).toBeCloseTo(2.8)
    expect(clock.pending).toBe(2) // a's ramp, b's ejection
    await checker.stop()
    expect(clock.pending).toBe(0)
    expect([a.weight, b.weight]).toEqual([10, 10])
    for (let i = 0; i < 3; i++) checker.observe(a, fail) // ignored once stopped
    expect(a.healthy).toBe(true)
  })

  it('ejects a real upstream that answers 500s, as the gateway would report it', async () => {
    const upstream = await startUpstream({ kind: 'ok', status: 500 })
    const healthyUpstream = await startUpstream()
    const bad = createEndpoint({ url: upstream.url })
    const good = createEndpoint({ url: healthyUpstream.url })
    const events: HealthChangeEvent[] = []
    checker = createHealthChecker({
      endpoints: [bad, good],
      passive: { consecutiveFailures: 3 },
      onChange: (e) => events.push(e),
    })
    for (let i = 0; i < 3; i++) {
      const response = await fetch(upstream.url)
      await response.arrayBuffer()
      checker.observe(bad, { ok: response.status < 500, status: response.status })
    }
    expect(checker.healthy()).toEqual([good])
    expect(events.map((e) => e.reason)).toEqual(['passive: 3 consecutive failures'])
  })
})

describe('passive and active together', () => {
  it('keeps an ejected endpoint out until the ejection expires, and active checks can keep it down', async () => {
    const upstream = await startUpstream()
    const ep = createEndpoint({ url: upstream.url })
    const other = createEndpoint({ url: 'http://127.0.0.1:9' })
    const clock = fakeClock()
    const events: HealthChangeEvent[] = []
    checker = createHealthChecker({
      endpoints: [ep, other],
      active: { healthyThreshold: 2, unhealthyThreshold: 1 },
      passive: { consecutiveFailures: 2, baseEjectionMs: 1_000 },
      slowStartMs: 1_000,
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
      onChange: (e) => events.push(e),
    })
    checker.observe(ep, fail)
    checker.observe(ep, fail)
    expect(ep.healthy).toBe(false)
    await checker.checkNow()
    await checker.checkNow()
    expect(ep.healthy).toBe(false) // probes pass, but the ejection still runs
    clock.advance(1_000)
    expect(ep.healthy).toBe(true)

    checker.observe(ep, fail)
    checker.observe(ep, fail)
    upstream.mode = { kind: 'ok', status: 503 }
    await checker.checkNow() // goes down on the active side while ejected: no event
    clock.advance(2_000)
    expect(ep.healthy).toBe(false) // ejection over, active keeps it down
    upstream.mode = { kind: 'ok' }
    await checker.checkNow()
    await checker.checkNow()
    expect(ep.healthy).toBe(true)
    expect(ep.weight).toBeCloseTo(0.1) // slow start after an active return too
    clock.advance(1_000)
    expect(ep.weight).toBe(1)
    expect(events.filter((e) => e.endpoint === ep).map((e) => `${e.source} ${e.healthy} ${e.reason}`)).toEqual([
      'passive false passive: 2 consecutive failures',
      'passive true ejection expired',
      'passive false passive: 2 consecutive failures',
      'active true active: 2 consecutive successes',
    ])
  })
})
