// Model routing config: `routes[].match.body` conditions and the aggregated `models:` list.
import type { ConfigValidator } from '@switchboard/core'
import type { BodyCondition } from '@switchboard/matcher'
import type { UpstreamConfig } from './types.ts'

/**
 * `models:` at the top level: the gateway answers `GET path` itself with the OpenAI model list of
 * the healthy endpoints of `upstreams`.
 * @example const models: ModelsConfig = { path: '/v1/models', upstreams: ['llm'], timeoutMs: 2_000, cacheTtlMs: 2_000, maxBodyBytes: 1 << 20 }
 */
export interface ModelsConfig {
  /** Where the list is served. @default '/v1/models' */
  path: string
  /** Upstreams whose models are listed, in order (the first serving a model is its `owned_by`). @default every upstream with `engineStats` */
  upstreams: string[]
  /** Upstreams without `engineStats`: longest wait for an endpoint's own `GET /v1/models` (head and body). @default 2 s */
  timeoutMs: number
  /** Upstreams without `engineStats`: how long an endpoint's list is reused before it is fetched again. @default 2 s */
  cacheTtlMs: number
  /** Upstreams without `engineStats`: largest model list body read from an endpoint. @default 1 MiB */
  maxBodyBytes: number
}

/** Where an OpenAI-style model list lives on an engine. */
export const MODELS_PATH = '/v1/models'

/** `models: true` or `models: { path, upstreams, timeout, cacheTtl, maxBodySize }`. */
export function parseModels(v: ConfigValidator, raw: unknown, upstreams: Record<string, UpstreamConfig>): ModelsConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const m = raw === true ? {} : v.object(raw, 'models')
  v.keys(m, 'models', ['path', 'upstreams', 'timeout', 'cacheTtl', 'maxBodySize'])
  const path = v.optString(m.path, 'models.path') ?? MODELS_PATH
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(path)) v.fail('models.path', 'a path such as /v1/models', m.path)
  let names: string[]
  if (m.upstreams === undefined) {
    names = Object.keys(upstreams).filter((n) => upstreams[n].engineStats !== undefined)
    if (names.length === 0) v.fail('models.upstreams', 'a list of upstreams (no upstream has engineStats, so none is listed by default)', undefined)
  } else {
    const list = v.list(m.upstreams, 'models.upstreams')
    if (list.length === 0) v.fail('models.upstreams', 'a non-empty list of upstream names', list)
    names = list.map((x, i) => {
      const name = v.string(x, `models.upstreams[${i}]`)
      if (!Object.hasOwn(upstreams, name)) v.fail(`models.upstreams[${i}]`, `the name of an upstream (${Object.keys(upstreams).join(', ')})`, name)
      return name
    })
    if (new Set(names).size !== names.length) v.fail('models.upstreams', 'a list without repeated names', list)
  }
  return {
    path,
    upstreams: names,
    timeoutMs: v.duration(m.timeout, 'models.timeout', 2_000, 1),
    cacheTtlMs: v.duration(m.cacheTtl, 'models.cacheTtl', 2_000, 0),
    maxBodyBytes: v.size(m.maxBodySize, 'models.maxBodySize', 1024 * 1024, 1),
  }
}

/**
 * `routes[].match.body`: field path → a string (exact, or a glob with `*`), a number, a boolean,
 * null, `{ exists: true | false }` or `{ in: [...] }` of those scalars. The matcher checks the rest
 * (glob and length bounds, field paths) when the route is compiled, with the same key path.
 */
export function parseBodyMatch(v: ConfigValidator, raw: unknown, at: string): Record<string, BodyCondition> {
  const obj = v.object(raw, at)
  const out = Object.create(null) as Record<string, BodyCondition>
  const keys = Object.keys(obj)
  if (keys.length === 0) v.fail(at, 'at least one field condition, such as { model: "llama-*" }', obj)
  for (const key of keys) {
    const cond = obj[key]
    const path = `${at}.${key}`
    if (cond !== null && typeof cond === 'object' && !Array.isArray(cond)) {
      const c = cond as Record<string, unknown>
      const inner = Object.keys(c)
      if (inner.length !== 1 || (inner[0] !== 'exists' && inner[0] !== 'in')) v.fail(path, '{ exists: true | false } or { in: [values] }', cond)
      if (inner[0] === 'exists') {
        if (typeof c.exists !== 'boolean') v.fail(`${path}.exists`, 'true or false', c.exists)
        out[key] = { exists: c.exists as boolean }
      } else {
        const list = v.list(c.in, `${path}.in`)
        if (list.length === 0) v.fail(`${path}.in`, 'a non-empty list of strings, numbers, booleans or null', list)
        out[key] = { in: list.map((x, i) => scalar(v, x, `${path}.in[${i}]`)) }
      }
    } else out[key] = scalar(v, cond, path)
  }
  return out
}

function scalar(v: ConfigValidator, value: unknown, path: string): string | number | boolean | null {
  if (typeof value === 'string') return v.expand(value, path)
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' || value === null) return value
  return v.fail(path, 'a string (exact, or a glob with *), a number, true, false, null, { exists } or { in: [...] }', value)
}
