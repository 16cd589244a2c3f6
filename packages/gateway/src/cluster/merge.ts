// Merging what the workers of a `server.workers` fleet answer into one answer: Prometheus text and
// the admin API's JSON. Pure functions (no `node:` imports), so they are unit-tested on their own.
import { type LatencyBuckets, quantile } from '../admin/insight.ts'

/**
 * Gauges that describe a state rather than an amount, and how the fleet's value is taken:
 * `min` (1 only when every worker says 1: an endpoint is healthy when it is in rotation in every
 * worker) or `max` (1 when any worker says 1: a pool is saturated, a circuit is in that state, in
 * some worker; uptime is the oldest worker's). Every other gauge is summed (in-flight requests,
 * open connections, tunnels). Plugin gauges named `*_healthy` / `*_up` take `min`, `*_state`,
 * `*_info`, `*_saturated`, `*_timestamp_seconds` take `max`.
 */
export const STATE_GAUGES: Readonly<Record<string, 'min' | 'max'>> = {
  switchboard_upstream_endpoint_healthy: 'min',
  switchboard_upstream_pool_saturated: 'max',
  switchboard_circuit_state: 'max',
  switchboard_uptime_seconds: 'max',
}

/**
 * Merges the Prometheus text exposition of every worker into one: counters, histogram buckets,
 * sums and counts, summaries and untyped samples are summed per series; gauges are summed unless
 * they describe a state ({@link STATE_GAUGES}). HELP and TYPE come from the first worker that has
 * the family; families and series keep the order they first appear in.
 * @example
 * mergeExpositions(['# TYPE x_total counter\nx_total 2\n', '# TYPE x_total counter\nx_total 3\n'])
 * // '# TYPE x_total counter\nx_total 5\n'
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, Family>()
  for (const text of texts) {
    let current: Family | undefined
    for (const line of text.split('\n')) {
      if (line === '') continue
      if (line.startsWith('#')) {
        const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s(.*))?$/.exec(line)
        if (!m) continue // other comments carry nothing to merge
        current = familyOf(families, m[2])
        if (m[1] === 'HELP') current.help ??= m[3] ?? ''
        else current.type ??= (m[3] ?? 'untyped').trim()
        continue
      }
      const sample = parseSample(line)
      if (!sample) continue
      const family = current && belongsTo(sample.name, current) ? current : familyOf(families, sample.name)
      const key = `${sample.name}${canonicalLabels(sample.labels)}`
      const seen = family.samples.get(key)
      if (!seen) family.samples.set(key, { name: sample.name, labelText: sample.labelText, value: sample.value })
      else seen.value = combine(family, seen.value, sample.value)
    }
  }
  let out = ''
  for (const f of families.values()) {
    if (f.samples.size === 0 && f.help === undefined && f.type === undefined) continue
    if (f.help !== undefined) out += `# HELP ${f.name} ${f.help}\n`
    if (f.type !== undefined) out += `# TYPE ${f.name} ${f.type}\n`
    for (const s of f.samples.values()) out += `${s.name}${s.labelText} ${formatNumber(s.value)}\n`
  }
  return out
}

/** One answer of one worker to an admin request. */
export interface WorkerAnswer {
  /** The worker's id (1…N, a replacement keeps the id of the worker it replaces). */
  readonly id: number
  readonly pid: number
  /** The parsed JSON body. */
  readonly body: unknown
}

/**
 * The fleet's answer to a JSON admin endpoint (`sub` is the path below `admin.path`), from every
 * worker's answer:
 * - `/stats` (the dashboard's feed): counts and latency buckets summed per route and upstream,
 *   p50/p99 recomputed from the summed buckets, `healthy` the fewest healthy endpoints any worker
 *   sees, an endpoint healthy when every worker has it in rotation, its circuit the worst state
 *   (open > half-open > closed), recent errors of all workers newest first;
 * - `/upstreams`, `/breakers`, `/cache`, `/discovery`, `POST /cache/purge`, `POST /routes/forget`:
 *   merged key by key ({@link mergeValues});
 * - anything else (`/config`, `/routes`, `/explain`, `/maintenance`, …), which every worker answers
 *   from the same config: the first worker's answer, plus `differs: [ids]` when some worker's
 *   answer is not the same (during a rolling reload, for instance).
 * Every object answer gets `workers: N`.
 * @example
 * mergeAdminJson('/cache', [{ id: 1, pid: 10, body: { cache: { hits: 1 } } }, { id: 2, pid: 11, body: { cache: { hits: 2 } } }])
 * // { cache: { hits: 3 }, workers: 2 }
 */
export function mergeAdminJson(sub: string, answers: readonly WorkerAnswer[]): unknown {
  const bodies = answers.map((a) => a.body)
  let merged: unknown
  if (sub === '/stats') merged = mergeStats(bodies)
  else if (sub === '/usage') merged = mergeUsage(bodies)
  else if (MERGED_ENDPOINTS.has(sub)) merged = mergeValues(bodies)
  else {
    merged = bodies[0]
    const first = JSON.stringify(bodies[0])
    const differs = answers.filter((a) => JSON.stringify(a.body) !== first).map((a) => a.id)
    if (differs.length && isObject(merged)) merged = { ...merged, differs }
  }
  return isObject(merged) ? { ...merged, workers: answers.length } : merged
}

/**
 * Merges JSON values of the same shape key by key. Numbers are summed, except: `time`, `uptimeS`,
 * `started`, `*At` → the largest; a number `healthy` → the smallest; `weight`, `configuredWeight`,
 * `priority`, `total`, `size` and `endpoint`-like settings → the first worker's; averages and
 * percentiles (`latency*Ms`, `*P50Ms`…, `errorRate`, `ratio`) → the mean. Booleans `healthy` and
 * `candidate` → true only when true everywhere, other booleans → true when true anywhere. A
 * `state` or `circuit` string → the worst (open > half-open > closed); other strings → the first.
 * Arrays of objects with a `url`, `endpoint`, `name` or `key` are matched on it, latency `buckets`
 * on their bound, `recentErrors` are concatenated (newest first); other arrays → the first.
 * @example mergeValues([{ hits: 1, time: 5 }, { hits: 2, time: 7 }]) // { hits: 3, time: 7 }
 */
export function mergeValues(values: readonly unknown[], key = ''): unknown {
  const present = values.filter((v) => v !== undefined && v !== null)
  if (present.length === 0) return values[0]
  const first = present[0]
  if (typeof first === 'number') {
    const nums = present.filter((v): v is number => typeof v === 'number')
    const rule = numberRule(key)
    if (rule === 'first') return first
    if (rule === 'max') return Math.max(...nums)
    if (rule === 'min') return Math.min(...nums)
    const sum = nums.reduce((a, b) => a + b, 0)
    return rule === 'mean' ? sum / nums.length : sum
  }
  if (typeof first === 'boolean') return ALL_TRUE_KEYS.has(key) ? present.every((v) => v === true) : present.some((v) => v === true)
  if (typeof first === 'string') {
    if (key === 'state' || key === 'circuit') return worstState(present.filter((v): v is string => typeof v === 'string'))
    return first
  }
  if (Array.isArray(first)) return mergeArrays(present.filter(Array.isArray), key)
  if (isObject(first)) {
    const objects = present.filter(isObject)
    const out: Record<string, unknown> = {}
    for (const o of objects) for (const k of Object.keys(o)) if (!(k in out)) out[k] = mergeValues(objects.map((x) => x[k]), k)
    return out
  }
  return first
}

const MERGED_ENDPOINTS = new Set(['/upstreams', '/breakers', '/cache', '/discovery', '/cache/purge', '/routes/forget'])
const ALL_TRUE_KEYS = new Set(['healthy', 'candidate'])
const FIRST_KEYS = new Set(['weight', 'configuredWeight', 'priority', 'total', 'size', 'port', 'limit', 'le'])
const MAX_KEYS = new Set(['time', 'uptimeS', 'started'])
const MEAN_KEY = /^latency.*Ms$|P\d+Ms$|^p\d+Ms$|^errorRate$|ratio$|^probeLatencyMs$/i
const STATE_ORDER = ['closed', 'half-open', 'open']

function numberRule(key: string): 'sum' | 'first' | 'max' | 'min' | 'mean' {
  if (FIRST_KEYS.has(key)) return 'first'
  if (MAX_KEYS.has(key) || /At$/.test(key)) return 'max'
  if (key === 'healthy') return 'min'
  if (MEAN_KEY.test(key)) return 'mean'
  return 'sum'
}

function worstState(states: string[]): string {
  let worst = states[0]
  for (const s of states) if (STATE_ORDER.indexOf(s) > STATE_ORDER.indexOf(worst)) worst = s
  return worst
}

function mergeArrays(arrays: unknown[][], key: string): unknown[] {
  if (key === 'recentErrors') {
    const all = arrays.flat()
    const time = (e: unknown): number => (isObject(e) && typeof e.time === 'number' ? e.time : isObject(e) && typeof e.time === 'string' ? Date.parse(e.time) : 0)
    return all.sort((a, b) => time(b) - time(a)).slice(0, Math.max(...arrays.map((a) => a.length)))
  }
  if (key === 'buckets') {
    const byLe = new Map<string, [number | string, number]>()
    for (const a of arrays)
      for (const pair of a) {
        if (!Array.isArray(pair)) continue
        const le = pair[0] as number | string
        const seen = byLe.get(String(le))
        if (seen) seen[1] += Number(pair[1])
        else byLe.set(String(le), [le, Number(pair[1])])
      }
    return [...byLe.values()]
  }
  const first = arrays[0]
  const idKey = first.length > 0 && isObject(first[0]) ? ['url', 'endpoint', 'name', 'key'].find((k) => typeof (first[0] as Record<string, unknown>)[k] === 'string') : undefined
  if (!idKey) return first.every((v) => isObject(v)) && first.length > 0 ? first.map((_, i) => mergeValues(arrays.map((a) => a[i]), key)) : first
  const groups = new Map<string, unknown[]>()
  for (const a of arrays)
    for (const item of a) {
      const id = isObject(item) ? String(item[idKey]) : JSON.stringify(item)
      const group = groups.get(id)
      if (group) group.push(item)
      else groups.set(id, [item])
    }
  return [...groups.values()].map((g) => mergeValues(g, key))
}

/** `/admin/usage`: rows of the same client, route and model summed across workers. */
function mergeUsage(bodies: unknown[]): unknown {
  const rows = new Map<string, Record<string, unknown>>()
  for (const body of bodies) {
    if (!isObject(body) || !Array.isArray(body.usage)) continue
    for (const row of body.usage) {
      if (!isObject(row)) continue
      const key = `${String(row.client)}\u0001${String(row.route)}\u0001${String(row.model)}`
      const seen = rows.get(key)
      if (!seen) rows.set(key, { ...row })
      else for (const k of ['requests', 'promptTokens', 'completionTokens', 'counted']) seen[k] = Number(seen[k] ?? 0) + Number(row[k] ?? 0)
    }
  }
  return { usage: [...rows.values()] }
}

function mergeStats(bodies: unknown[]): unknown {
  const merged = mergeValues(bodies)
  if (!isObject(merged)) return merged
  const recompute = (entries: unknown): void => {
    if (!Array.isArray(entries)) return
    for (const e of entries) {
      if (!isObject(e) || !isObject(e.latency)) continue
      const latency = e.latency as unknown as LatencyBuckets
      e.p50Ms = ms(latency, 0.5)
      e.p99Ms = ms(latency, 0.99)
    }
  }
  recompute(merged.routes)
  recompute(merged.upstreams)
  return merged
}

function ms(l: LatencyBuckets, q: number): number | null {
  const v = quantile(l, q)
  return Number.isFinite(v) ? Math.round(v * 1e6) / 1e3 : null
}

interface Family {
  name: string
  help?: string
  type?: string
  samples: Map<string, { name: string; labelText: string; value: number }>
}

function familyOf(families: Map<string, Family>, name: string): Family {
  let f = families.get(name)
  if (!f) families.set(name, (f = { name, samples: new Map() }))
  return f
}

function belongsTo(sample: string, f: Family): boolean {
  if (sample === f.name) return true
  if (f.type !== 'histogram' && f.type !== 'summary') return false
  return sample === `${f.name}_sum` || sample === `${f.name}_count` || (f.type === 'histogram' && sample === `${f.name}_bucket`)
}

function combine(f: Family, a: number, b: number): number {
  if (f.type !== 'gauge') return a + b
  const rule = STATE_GAUGES[f.name] ?? (/_(healthy|up)$/.test(f.name) ? 'min' : /_(state|info|saturated|timestamp_seconds)$/.test(f.name) ? 'max' : undefined)
  if (rule === 'min') return Math.min(a, b)
  if (rule === 'max') return Math.max(a, b)
  return a + b
}

interface Sample {
  name: string
  labelText: string
  labels: Array<[string, string]>
  value: number
}

/** `name{a="x",b="y"} value [timestamp]`; undefined for a line that is not a sample. */
function parseSample(line: string): Sample | undefined {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)
  if (!m) return undefined
  const name = m[1]
  let i = name.length
  const labels: Array<[string, string]> = []
  let labelText = ''
  if (line[i] === '{') {
    const start = i
    i++
    while (i < line.length && line[i] !== '}') {
      const eq = line.indexOf('=', i)
      if (eq === -1 || line[eq + 1] !== '"') return undefined
      const label = line.slice(i, eq).trim()
      let j = eq + 2
      let value = ''
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < line.length) {
          const c = line[j + 1]
          value += c === 'n' ? '\n' : c
          j += 2
        } else value += line[j++]
      }
      if (j >= line.length) return undefined
      labels.push([label, value])
      i = j + 1
      if (line[i] === ',') i++
    }
    if (line[i] !== '}') return undefined
    i++
    labelText = line.slice(start, i)
  }
  const rest = line.slice(i).trim().split(/\s+/)
  const value = parseValue(rest[0])
  return value === undefined ? undefined : { name, labelText, labels, value }
}

function parseValue(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined
  if (text === '+Inf' || text === 'Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return Number.NaN
  const v = Number(text)
  return Number.isNaN(v) ? undefined : v
}

function canonicalLabels(labels: Array<[string, string]>): string {
  return labels.length === 0 ? '' : JSON.stringify([...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))
}

/** As the metrics package writes numbers: `+Inf`, `-Inf`, `NaN`, else the shortest round trip. */
function formatNumber(v: number): string {
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
