import type { ConfigValidator } from '@switchboard/core'
import { parseStore } from './store.ts'
import type { GatewayRegistry } from '../registry.ts'
import type { DiscoveryConfig } from './types.ts'

export function parseDiscovery(v: ConfigValidator, raw: unknown, registry: GatewayRegistry): DiscoveryConfig | undefined {
  if (raw === undefined) return undefined
  const d = v.object(raw, 'discovery')
  v.keys(d, 'discovery', ['endpoints', 'remember', 'store', 'timeouts', 'keyHeaders', 'successStatuses', 'replay', 'keyQuery', 'maxEntries'])
  const list = v.list(d.endpoints, 'discovery.endpoints')
  if (list.length === 0) v.fail('discovery.endpoints', 'at least one endpoint URL', list)
  const endpoints = list.map((e, i) => v.httpUrl(e, `discovery.endpoints[${i}]`))
  let rememberTtlMs = 3_600_000
  if (d.remember !== undefined) {
    const r = v.object(d.remember, 'discovery.remember')
    v.keys(r, 'discovery.remember', ['ttl'])
    rememberTtlMs = v.duration(r.ttl, 'discovery.remember.ttl', rememberTtlMs, 1)
  }
  const t = d.timeouts === undefined ? {} : v.object(d.timeouts, 'discovery.timeouts')
  v.keys(t, 'discovery.timeouts', ['connect', 'response', 'idle'])
  return {
    endpoints,
    rememberTtlMs,
    store: d.store === undefined ? undefined : parseStore(v, d.store, registry, 'discovery.store'),
    timeouts: {
      connectMs: v.duration(t.connect, 'discovery.timeouts.connect', 2_000, 1),
      responseMs: v.duration(t.response, 'discovery.timeouts.response', 30_000, 1),
      idleMs: v.duration(t.idle, 'discovery.timeouts.idle', 60_000, 1),
    },
    keyHeaders: d.keyHeaders === undefined ? [] : v.list(d.keyHeaders, 'discovery.keyHeaders').map((h, i) => v.token(h, `discovery.keyHeaders[${i}]`)),
    successStatuses:
      d.successStatuses === undefined
        ? ['2xx']
        : v.list(d.successStatuses, 'discovery.successStatuses').map((s, i) => {
            if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599) return s
            if (typeof s === 'string' && /^[1-5]xx$/.test(s)) return s
            return v.fail(`discovery.successStatuses[${i}]`, 'a status code (200) or class (2xx)', s)
          }),
    replay: d.replay === undefined ? 'idempotent' : d.replay === 'idempotent' || d.replay === 'all' ? d.replay : v.fail('discovery.replay', 'idempotent or all', d.replay),
    keyQuery: d.keyQuery === undefined ? false : typeof d.keyQuery === 'boolean' ? d.keyQuery : v.fail('discovery.keyQuery', 'true or false', d.keyQuery),
    maxEntries: v.optInteger(d.maxEntries, 'discovery.maxEntries', 1) ?? 10_000,
  }
}
