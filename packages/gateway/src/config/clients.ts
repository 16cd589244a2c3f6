import { createHash } from 'node:crypto'
import type { ConfigObject, ConfigValidator } from '@switchboard/core'
import { policyNames } from './server.ts'
import { DEFAULT_POOL } from './upstreams.ts'
import type { ClientConfig, DocsConfig, HostMode, ProxyEnvelopeConfig, UpstreamConfig } from './types.ts'

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const SHA256 = /^sha256:[0-9a-f]{64}$/

/**
 * `targets.NAME: { baseUrl, defaultHeaders?, host?, timeouts? }` (seed 004): an upstream with one
 * base URL whose `Host` defaults to the target's own, since a third-party API needs it.
 */
export function parseTargets(v: ConfigValidator, raw: unknown, upstreamNames: readonly string[]): UpstreamConfig[] {
  if (raw === undefined) return []
  const map = v.map(raw, 'targets')
  return Object.keys(map).map((name) => {
    const at = `targets.${name}`
    if (!NAME.test(name)) v.fail(at, 'a target name of letters, digits, _ . -', name)
    if (upstreamNames.includes(name)) v.fail(at, 'a name no entry of upstreams: uses', name)
    const t = v.object(map[name], at)
    v.keys(t, at, ['baseUrl', 'defaultHeaders', 'host', 'timeouts'])
    const url = v.httpUrl(t.baseUrl, `${at}.baseUrl`)
    const tt = t.timeouts === undefined ? {} : v.object(t.timeouts, `${at}.timeouts`)
    v.keys(tt, `${at}.timeouts`, ['connect', 'response', 'idle'])
    return {
      name,
      balancer: { strategy: 'round-robin', options: {} },
      targets: [{ url, weight: 1, priority: 0 }],
      timeouts: {
        connectMs: v.duration(tt.connect, `${at}.timeouts.connect`, 5_000, 1),
        responseMs: v.duration(tt.response, `${at}.timeouts.response`, 120_000, 1),
        idleMs: v.duration(tt.idle, `${at}.timeouts.idle`, 120_000, 1),
      },
      healthCheck: undefined,
      outlierDetection: undefined,
      slowStartMs: 0,
      retries: 0,
      pool: DEFAULT_POOL,
      host: t.host === undefined ? 'upstream' : parseHostMode(v, t.host, `${at}.host`),
      defaultHeaders: t.defaultHeaders === undefined ? undefined : parseHeaderMap(v, t.defaultHeaders, `${at}.defaultHeaders`),
    }
  })
}

/** `host:` of an upstream or target: `preserve`, `upstream`, or a literal host name. */
export function parseHostMode(v: ConfigValidator, raw: unknown, at: string): HostMode {
  const s = v.string(raw, at)
  if (s === 'preserve' || s === 'upstream') return s
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.test(s)) v.fail(at, 'preserve, upstream, or a host name such as api.example.com', s)
  return { literal: s }
}

/** A `{ Name: value }` header map: token names (kept lowercase), values without CR/LF/NUL. */
export function parseHeaderMap(v: ConfigValidator, raw: unknown, at: string): Record<string, string> {
  const map = v.map(raw, at)
  const out = Object.create(null) as Record<string, string>
  for (const name of Object.keys(map)) {
    if (!HEADER_NAME.test(name)) v.fail(`${at}.${name}`, 'a header name (letters, digits and !#$%&\'*+.^_`|~-)', name)
    const value = v.string(map[name], `${at}.${name}`)
    if (/[\r\n\0]/.test(value)) v.fail(`${at}.${name}`, 'a header value without CR, LF or NUL', '(hidden)')
    out[name.toLowerCase()] = value
  }
  return out
}

/** `secrets.NAME: value` (`${ENV}` expanded); values never appear in errors. */
export function parseSecrets(v: ConfigValidator, raw: unknown): Record<string, string> {
  const out = Object.create(null) as Record<string, string>
  if (raw === undefined) return out
  const map = v.map(raw, 'secrets')
  for (const name of Object.keys(map)) {
    const at = `secrets.${name}`
    if (!NAME.test(name)) v.fail(at, 'a secret name of letters, digits, _ . -', name)
    if (typeof map[name] !== 'string') v.fail(at, 'a string (for example "Bearer ${API_KEY}")', '(hidden)')
    const value = v.expand(map[name] as string, at)
    if (value === '' || /[\r\n\0]/.test(value)) v.fail(at, 'a non-empty value without CR, LF or NUL', '(hidden)')
    out[name] = value
  }
  return out
}

/** The `sha256:<hex>` form of a key, as `keyHash:` holds it. */
export function sha256Tag(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`
}

/**
 * `clients.NAME` (seed 004). `key:` is hashed here, so nothing downstream holds it; a client with
 * neither `key` nor `keyHash` uses its own name as its bearer key (the seed's behaviour).
 */
export function parseClients(
  v: ConfigValidator,
  raw: unknown,
  upstreams: Record<string, UpstreamConfig>,
  secrets: Record<string, string>,
): Record<string, ClientConfig> {
  const out = Object.create(null) as Record<string, ClientConfig>
  if (raw === undefined) return out
  const map = v.map(raw, 'clients')
  const hashes = new Map<string, string>()
  for (const name of Object.keys(map)) {
    const at = `clients.${name}`
    if (!/^[\x21-\x7e]+$/.test(name)) v.fail(at, 'a client name of visible ASCII characters', name)
    const c = v.object(map[name] ?? {}, at)
    v.keys(c, at, ['key', 'keyHash', 'target', 'authHeaderRef', 'allowedMethods', 'allowedPaths', 'timeoutMs', 'timeout', 'identityHeaders'])
    if (c.key !== undefined && c.keyHash !== undefined) v.fail(at, 'either key or keyHash, not both', '(hidden)')
    let keyHash: string
    let nameIsKey = false
    if (c.keyHash !== undefined) {
      keyHash = v.string(c.keyHash, `${at}.keyHash`).toLowerCase()
      if (!SHA256.test(keyHash)) v.fail(`${at}.keyHash`, 'sha256: followed by 64 hex digits', '(hidden)')
    } else if (c.key !== undefined) {
      if (typeof c.key !== 'string') v.fail(`${at}.key`, 'a string', '(hidden)')
      const key = v.expand(c.key as string, `${at}.key`)
      if (key.length === 0 || /[\s\0]/.test(key)) v.fail(`${at}.key`, 'a non-empty key without spaces or control characters', '(hidden)')
      keyHash = sha256Tag(key)
    } else {
      keyHash = sha256Tag(name)
      nameIsKey = true
    }
    const other = hashes.get(keyHash)
    if (other !== undefined) v.fail(`${at}.key`, `a key no other client uses (clients.${other} has the same)`, '(hidden)')
    hashes.set(keyHash, name)
    const target = v.string(c.target, `${at}.target`)
    if (!Object.hasOwn(upstreams, target)) v.fail(`${at}.target`, `the name of a target or upstream (${Object.keys(upstreams).join(', ')})`, target)
    const authHeaderRef = v.optString(c.authHeaderRef, `${at}.authHeaderRef`)
    if (authHeaderRef !== undefined && !Object.hasOwn(secrets, authHeaderRef)) {
      v.fail(`${at}.authHeaderRef`, `the name of an entry in secrets: (${Object.keys(secrets).join(', ') || 'none defined'})`, authHeaderRef)
    }
    const allowedMethods = (c.allowedMethods === undefined ? [] : v.list(c.allowedMethods, `${at}.allowedMethods`)).map((m, i) => {
      const s = v.string(m, `${at}.allowedMethods[${i}]`).toUpperCase()
      if (!/^[A-Z]+$/.test(s)) v.fail(`${at}.allowedMethods[${i}]`, 'an HTTP method name', m)
      return s
    })
    const allowedPaths = (c.allowedPaths === undefined ? [] : v.list(c.allowedPaths, `${at}.allowedPaths`)).map((p, i) => {
      const s = v.string(p, `${at}.allowedPaths[${i}]`)
      if (!s.startsWith('/') || /[?#\s]/.test(s)) v.fail(`${at}.allowedPaths[${i}]`, 'a path or glob starting with / (no query, no spaces)', p)
      return s
    })
    if (c.timeoutMs !== undefined && c.timeout !== undefined) v.fail(at, 'either timeoutMs or timeout, not both', undefined)
    const timeoutMs =
      c.timeoutMs !== undefined
        ? v.number(c.timeoutMs, `${at}.timeoutMs`, { min: 1 })
        : c.timeout !== undefined
          ? v.duration(c.timeout, `${at}.timeout`, 0, 1)
          : undefined
    out[name] = {
      name,
      keyHash,
      nameIsKey,
      target,
      authHeaderRef,
      allowedMethods,
      allowedPaths,
      timeoutMs,
      identityHeaders: parseClientIdentityHeaders(v, c.identityHeaders, `${at}.identityHeaders`),
    }
  }
  return out
}

function parseClientIdentityHeaders(v: ConfigValidator, raw: unknown, at: string): ClientConfig['identityHeaders'] {
  if (raw === undefined || raw === false) return false
  const o = v.object(raw, at)
  v.keys(o, at, ['subject', 'method', 'client'])
  const out: { subject?: string; method?: string; client?: string } = {}
  for (const key of ['subject', 'method', 'client'] as const) {
    const name = v.optString(o[key], `${at}.${key}`)
    if (name === undefined) continue
    if (!HEADER_NAME.test(name)) v.fail(`${at}.${key}`, 'a header name', name)
    out[key] = name.toLowerCase()
  }
  return out
}

/** `proxy:` (only with `clients:`): `{ path: /proxy, maxBodySize, passthrough }`, or `false` to turn the envelope off. */
export function parseProxy(v: ConfigValidator, raw: unknown, maxBodyBytes: number): ProxyEnvelopeConfig | undefined {
  if (raw === false) return undefined
  const p: ConfigObject = raw === undefined || raw === true ? {} : v.object(raw, 'proxy')
  v.keys(p, 'proxy', ['path', 'maxBodySize', 'passthrough', 'policies'])
  const path = v.optString(p.path, 'proxy.path') ?? '/proxy'
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/.test(path) || path.endsWith('/') && path !== '/') v.fail('proxy.path', 'a path such as /proxy', p.path)
  if (p.passthrough !== undefined && typeof p.passthrough !== 'boolean') v.fail('proxy.passthrough', 'true or false', p.passthrough)
  return {
    path,
    maxBodyBytes: v.size(p.maxBodySize, 'proxy.maxBodySize', maxBodyBytes, 1),
    passthrough: (p.passthrough as boolean | undefined) ?? true,
    policies: policyNames(v, p.policies, 'proxy.policies'),
  }
}

/** `docs: true` or `docs: { path, openapiPath, title }`. */
export function parseDocs(v: ConfigValidator, raw: unknown): DocsConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const d: ConfigObject = raw === true ? {} : v.object(raw, 'docs')
  v.keys(d, 'docs', ['path', 'openapiPath', 'title'])
  const path = (v.optString(d.path, 'docs.path') ?? '/docs').replace(/\/+$/, '')
  if (!/^\/[A-Za-z0-9._~-][A-Za-z0-9._~/-]*$/.test(path)) v.fail('docs.path', 'a path such as /docs', d.path)
  const openapiPath = v.optString(d.openapiPath, 'docs.openapiPath') ?? '/openapi.json'
  if (!/^\/[A-Za-z0-9._~/-]+$/.test(openapiPath) || openapiPath.startsWith(`${path}/`)) v.fail('docs.openapiPath', 'a path such as /openapi.json, outside docs.path', d.openapiPath)
  return { path, openapiPath, title: v.optString(d.title, 'docs.title') ?? 'Switchboard gateway' }
}
