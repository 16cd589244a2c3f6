import { describe, expect, it } from 'vitest'
import { MetricsRegistry } from '../src/index.ts'
import { findBinary, NASTY_VALUES, promtoolCheck, realisticRegistry } from './fixtures.ts'

// Under CI (process.env.CI) a missing promtool makes these tests fail: scripts/test-deps.sh installs it.
const skip = !process.env.CI && findBinary('promtool') === undefined

describe.skipIf(skip)('promtool check metrics', () => { // skipped only when promtool is not installed locally: bash scripts/test-deps.sh
  it('finds no parse error and no lint problem in a realistic exposition', () => {
    const text = realisticRegistry().exposition()
    // The fixture really has what it claims: a fold, escapes, NaN, +Inf, empty and full histograms.
    // 9 route series and 40 raw paths: 20 keep a series of their own, 29 fold.
    expect(text).toContain('switchboard_http_requests_total{route="_other",method="_other",status="_other"} 29\n')
    expect(text).toContain('switchboard_switchboard_metrics_series_dropped_total{metric="switchboard_http_requests_total"} 29\n')
    expect(text).toContain('upstream="C:\\\\temp\\\\\\"quoted\\"\\nsecond line"')
    expect(text).toContain('switchboard_cache_hit_ratio{cache="empty"} NaN\n')
    expect(text).toContain('switchboard_http_request_duration_seconds_bucket{route="orders",le="+Inf"} 10\n')
    expect(text).toContain('switchboard_http_request_duration_seconds_count{route="docs"} 0\n')
    expect(text).toContain('# TYPE switchboard_upstream_connect_duration_seconds histogram\n# HELP')
    expect(text).toContain('switchboard_queue_wait_seconds_count 0\n')
    expect(text.split('\n').filter((l) => l.startsWith('switchboard_upstream_errors_total{'))).toHaveLength(NASTY_VALUES.length)
    expect(promtoolCheck(text)).toEqual({ status: 0, output: '' })
  })

  it('finds nothing in the exposition of a fresh or a reset registry', () => {
    const registry = realisticRegistry()
    registry.reset()
    expect(promtoolCheck(registry.exposition())).toEqual({ status: 0, output: '' })
    const fresh = new MetricsRegistry()
    fresh.gauge('up', 'Up.').set(1)
    expect(promtoolCheck(fresh.exposition())).toEqual({ status: 0, output: '' })
  })

  // Controls: the same harness reports the mistakes our registry refuses to make.
  it('reports a counter without _total, a missing-escape label value and a split family', () => {
    const lint = promtoolCheck('# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n')
    expect(lint.status).not.toBe(0)
    expect(lint.output).toContain('counter metrics should have "_total" suffix')
    const unescaped = promtoolCheck('# HELP g G.\n# TYPE g gauge\ng{k="a"b"} 1\n')
    expect(unescaped.status).not.toBe(0)
    expect(unescaped.output).toMatch(/pars/i)
    const split = promtoolCheck('# HELP g G.\n# TYPE g gauge\ng{k="a"} 1\n# HELP h H.\n# TYPE h gauge\nh 1\n# HELP g G.\n# TYPE g gauge\ng{k="b"} 1\n')
    expect(split.status).not.toBe(0)
  })
})
