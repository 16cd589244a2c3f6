import { describe, expect, it } from 'vitest'
import { MetricsRegistry } from '../src/index.ts'

describe('onCollect', () => {
  it('runs collectors in registration order before every exposition and snapshot', () => {
    const registry = new MetricsRegistry()
    const calls: string[] = []
    const queue = registry.gauge('queue_length', 'Queue length', ['queue'])
    let live: Record<string, number> = { mail: 3, jobs: 1 }
    registry.onCollect(() => {
      calls.push('first')
      queue.clear()
      for (const [name, length] of Object.entries(live)) queue.labels(name).set(length)
    })
    registry.onCollect(() => calls.push('second'))
    expect(registry.exposition()).toContain('queue_length{queue="jobs"} 1\nqueue_length{queue="mail"} 3\n')
    live = { mail: 0 }
    expect(registry.snapshot()[0]!.series).toEqual([{ labels: { queue: 'mail' }, value: 0 }])
    expect(calls).toEqual(['first', 'second', 'first', 'second'])
  })

  it('the returned function removes a collector', () => {
    const registry = new MetricsRegistry()
    let runs = 0
    const remove = registry.onCollect(() => void runs++)
    registry.exposition()
    remove()
    remove()
    registry.exposition()
    registry.snapshot()
    expect(runs).toBe(1)
    expect(() => registry.onCollect('x' as unknown as () => void)).toThrow(TypeError)
  })

  it('a failing collector does not stop the others, and the exposition throws its error', () => {
    const registry = new MetricsRegistry()
    const order: number[] = []
    const boom = new Error('boom')
    registry.onCollect(() => {
      order.push(1)
      throw boom
    })
    registry.onCollect(() => void order.push(2))
    expect(() => registry.exposition()).toThrow(boom)
    expect(order).toEqual([1, 2])
    registry.onCollect(() => {
      throw new Error('bang')
    })
    expect(() => registry.snapshot()).toThrow(AggregateError)
  })
})

describe('reset', () => {
  it('drops every labeled series and zeroes metrics without labels, which stay registered', () => {
    const registry = new MetricsRegistry()
    const c = registry.counter('c_total', 'c', ['k'])
    const plain = registry.counter('plain_total', 'plain')
    const g = registry.gauge('g', 'g')
    const h = registry.histogram('h_seconds', 'h', [], [1])
    const hl = registry.histogram('hl_seconds', 'hl', ['k'], [1])
    const kept = c.labels('a')
    kept.inc(5)
    plain.inc(2)
    g.set(9)
    h.observe(0.5)
    hl.labels('a').observe(2)
    registry.reset()
    expect(registry.exposition()).toBe(
      [
        '# HELP c_total c',
        '# TYPE c_total counter',
        '# HELP g g',
        '# TYPE g gauge',
        'g 0',
        '# HELP h_seconds h',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{le="1"} 0',
        'h_seconds_bucket{le="+Inf"} 0',
        'h_seconds_sum 0',
        'h_seconds_count 0',
        '# HELP hl_seconds hl',
        '# TYPE hl_seconds histogram',
        '# HELP plain_total plain',
        '# TYPE plain_total counter',
        'plain_total 0',
        '',
      ].join('\n'),
    )
    // The same registrations still resolve to the same metrics; a child kept from before is detached.
    expect(registry.counter('c_total', 'c', ['k'])).toBe(c)
    kept.inc()
    expect(c.labels('a')).not.toBe(kept)
    expect(c.labels('a').value).toBe(0)
    plain.inc()
    expect(plain.labels().value).toBe(1)
  })
})
