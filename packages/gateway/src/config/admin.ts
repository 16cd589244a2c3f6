import type { ConfigValidator } from '@switchboard/core'
import type { AccessLogConfig, AdminConfig, LogsConfig, MetricsConfig, TracingConfig } from './types.ts'

export function parseAdmin(v: ConfigValidator, raw: unknown, healthPath: string): AdminConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const a = raw === true ? {} : v.object(raw, 'admin')
  v.keys(a, 'admin', ['path', 'token', 'listen'])
  const path = (v.optString(a.path, 'admin.path') ?? '/admin').replace(/\/+$/, '')
  if (!path.startsWith('/') || path.length < 2) v.fail('admin.path', 'a path prefix such as /admin', a.path)
  const listen = a.listen === undefined ? undefined : parseListen(v, a.listen, 'admin.listen')
  if (!listen && (healthPath === path || healthPath.startsWith(`${path}/`))) v.fail('admin.path', 'a prefix that does not contain server.healthPath', a.path)
  const token = v.optString(a.token, 'admin.token')
  if (token !== undefined && token.length < 16) v.fail('admin.token', 'a token of at least 16 characters', '(hidden)')
  return { path, token, listen }
}

/** `HOST:PORT`, `[v6]:PORT` or a port number (then 127.0.0.1). */
function parseListen(v: ConfigValidator, raw: unknown, at: string): { host: string; port: number } {
  const text = typeof raw === 'number' ? String(raw) : v.string(raw, at)
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text) ?? (/^\d{1,5}$/.test(text) ? [text, undefined, '127.0.0.1', text] : null)
  const port = m ? Number(m[3]) : Number.NaN
  if (!m || !(port >= 0 && port <= 65535)) v.fail(at, 'HOST:PORT such as 127.0.0.1:9901 (or a port number)', raw)
  return { host: (m[1] ?? m[2])!, port }
}

/** `metrics: true` or `metrics: { path: /metrics }`. */
export function parseMetrics(v: ConfigValidator, raw: unknown): MetricsConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const m = raw === true ? {} : v.object(raw, 'metrics')
  v.keys(m, 'metrics', ['path'])
  const path = v.optString(m.path, 'metrics.path') ?? '/metrics'
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(path)) v.fail('metrics.path', 'a path such as /metrics', m.path)
  return { path }
}

/** `logs: { access: true | { path, sample, query } }`. */
export function parseLogs(v: ConfigValidator, raw: unknown): LogsConfig {
  if (raw === undefined) return { access: undefined }
  const l = v.object(raw, 'logs')
  v.keys(l, 'logs', ['access'])
  let access: AccessLogConfig | undefined
  if (l.access === true) access = { path: undefined, sample: 1, query: false }
  else if (l.access !== undefined && l.access !== false) {
    const a = v.object(l.access, 'logs.access')
    v.keys(a, 'logs.access', ['path', 'sample', 'query'])
    const sample = a.sample === undefined ? 1 : v.number(a.sample, 'logs.access.sample', { min: 0, max: 1 })
    if (a.query !== undefined && typeof a.query !== 'boolean') v.fail('logs.access.query', 'true or false', a.query)
    access = { path: v.optString(a.path, 'logs.access.path'), sample, query: (a.query as boolean | undefined) ?? false }
  }
  return { access }
}

/** `tracing: { traceparent: true }`. */
export function parseTracing(v: ConfigValidator, raw: unknown): TracingConfig {
  if (raw === undefined) return { traceparent: true }
  const t = v.object(raw, 'tracing')
  v.keys(t, 'tracing', ['traceparent'])
  if (t.traceparent !== undefined && typeof t.traceparent !== 'boolean') v.fail('tracing.traceparent', 'true or false', t.traceparent)
  return { traceparent: (t.traceparent as boolean | undefined) ?? true }
}
