import { createEndpoint } from '@switchboard/balancer'
import { describe, expect, it } from 'vitest'
import { createHealthChecker, type HealthChangeEvent, type HealthCheckerOptions } from '../src/index.ts'
import { fakeClock } from './helpers.ts'

const endpoints = [createEndpoint({ url: 'http://127.0.0.1:9001' }), createEndpoint({ url: 'http://127.0.0.1:9002' })]

describe('options', () => {
  it.each<[string, Partial<HealthCheckerOptions>, string]>([
    ['intervalMs 0', { active: { intervalMs: 0 } }, 'active.intervalMs must be a positive integer'],
    ['intervalMs 1.5', { active: { intervalMs: 1.5 } }, 'active.intervalMs must be a positive integer'],
    ['timeoutMs -1', { active: { timeoutMs: -1 } }, 'active.timeoutMs must be a positive integer'],
    ['healthyThreshold 0', { active: { healthyThreshold: 0 } }, 'active.healthyThreshold must be a positive integer'],
    ['unhealthyThreshold NaN', { active: { unhealthyThreshold: Number.NaN } }, 'active.unhealthyThreshold must be a positive integer'],
    ['jitterRatio 1', { active: { jitterRatio: 1 } }, 'active.jitterRatio must be a number in [0, 1)'],
    ['path without slash', { active: { path: 'health' } }, 'active.path must start with "/"'],
    ['method POST', { active: { method: 'POST' as 'GET' } }, "active.method must be 'HEAD', 'GET' or 'OPTIONS'"],
    ['expectStatus []', { active: { expectStatus: [] } }, 'active.expectStatus must be a non-empty list of statuses'],
    ['expectStatus 6xx', { active: { expectStatus: ['6xx'] } }, "active.expectStatus entries must be a status (200) or a class ('2xx'), got 6xx"],
    ['headers', { active: { headers: { a: 1 as unknown as string } } }, 'active.headers must be a record of strings'],
    ['failureRate 0', { passive: { failureRate: 0 } }, 'passive.failureRate must be a number in (0, 1]'],
    ['consecutiveFailures 0', { passive: { consecutiveFailures: 0 } }, 'passive.consecutiveFailures must be a positive integer'],
    ['minRequests 0', { passive: { minRequests: 0 } }, 'passive.minRequests must be a positive integer'],
    ['windowMs 0', { passive: { windowMs: 0 } }, 'passive.windowMs must be a positive integer'],
    ['maxEjectionMs < base', { passive: { baseEjectionMs: 10, maxEjectionMs: 5 } }, 'passive.maxEjectionMs must be at least passive.baseEjectionMs'],
    ['maxEjectedPercent 101', { passive: { maxEjectedPercent: 101 } }, 'passive.maxEjectedPercent must be a number in [0, 100]'],
    ['slowStartMs -1', { slowStartMs: -1 }, 'slowStartMs must be a non-negative integer'],
    ['initiallyHealthy false without probes', { initiallyHealthy: false }, 'initiallyHealthy must be true when active checks are off'],
    ['setTimer alone', { setTimer: () => 0 }, 'setTimer and clearTimer must be given together'],
    ['endpoints not a list', { endpoints: undefined }, 'endpoints must be an array of endpoints'],
    ['endpoint repeated', { endpoints: [endpoints[0], endpoints[0]] }, 'endpoints[1] is listed twice'],
  ])('rejects %s', (_, overrides, message) => {
    expect(() => createHealthChecker({ endpoints, ...overrides } as HealthCheckerOptions)).toThrow(new RangeError(message))
  })

  it('accepts status codes and classes in expectStatus', () => {
    expect(() => createHealthChecker({ endpoints, active: { expectStatus: [200, '204', '3XX'] } })).not.toThrow()
  })
})

describe('healthy list, events and lifecycle', () => {
  it('returns the same array while the healthy set is unchanged and a new one when it changes', async () => {
    const clock = fakeClock()
    const eps = [createEndpoint({ url: 'http://a' }), createEndpoint({ url: 'http://b' })]
    const checker = createHealthChecker({
      endpoints: eps,
      passive: { consecutiveFailures: 1, baseEjectionMs: 10 },
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
    })
    const first = checker.healthy()
    expect(first).toEqual(eps)
    checker.observe(eps[0], { ok: true })
    expect(checker.healthy()).toBe(first)
    checker.observe(eps[0], { ok: false })
    const second = checker.healthy()
    expect(second).not.toBe(first)
    expect(second).toEqual([eps[1]])
    expect(checker.healthy()).toBe(second)
    expect(Object.isFrozen(second)).toBe(true)
    expect(checker.endpoints).toEqual(eps)
    clock.advance(10)
    expect(checker.healthy()).toEqual(eps)
    await checker.stop()
  })

  it('delivers events to subscribers until they unsubscribe', async () => {
    const clock = fakeClock()
    const ep = createEndpoint({ url: 'http://a' })
    const checker = createHealthChecker({
      endpoints: [ep, createEndpoint({ url: 'http://b' })],
      passive: { consecutiveFailures: 1, baseEjectionMs: 10 },
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
    })
    const seen: HealthChangeEvent[] = []
    const unsubscribe = checker.subscribe((e) => seen.push(e))
    checker.observe(ep, { ok: false })
    unsubscribe()
    clock.advance(10)
    expect(seen.map((e) => e.reason)).toEqual(['passive: 1 consecutive failure'])
    await checker.stop()
  })

  it('resets health on creation and stops through Symbol.asyncDispose', async () => {
    const clock = fakeClock()
    const ep = createEndpoint({ url: 'http://a' })
    ep.setHealthy(false)
    {
      await using checker = createHealthChecker({
        endpoints: [ep],
        active: { intervalMs: 100 },
        now: clock.now,
        setTimer: clock.setTimer,
        clearTimer: clock.clearTimer,
        fetch: () => new Promise(() => {}), // ignores its signal: stop() must not wait for it
      })
      expect(ep.healthy).toBe(true)
      checker.start()
      clock.advance(20) // the first probe starts and hangs
      expect(clock.pending).toBe(1) // its timeout
    }
    expect(clock.pending).toBe(0)
  })
})
