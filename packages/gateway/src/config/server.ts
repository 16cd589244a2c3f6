import { type ConfigValidator, createIpMatcher } from '@switchboard/core'
import { availableParallelism } from 'node:os'
import { parseListenerTls } from './tls.ts'
import type { ServerConfig, TransportMode } from './types.ts'

const TRANSPORTS: readonly TransportMode[] = ['auto', 'node', 'native']
/** Most worker processes `server.workers` may ask for. */
const MAX_WORKERS = 256

/** `server:`; `baseDir` is where relative certificate paths are read from (the config file's folder). */
export function parseServer(v: ConfigValidator, raw: unknown, baseDir: string = process.cwd()): ServerConfig {
  const s = raw === undefined ? {} : v.object(raw, 'server')
  v.keys(s, 'server', ['host', 'port', 'limits', 'healthPath', 'keepAliveTimeout', 'shutdownTimeout', 'policies', 'trustedProxies', 'publicPaths', 'transport', 'pipeBodies', 'workers', 'tls'])
  const l = s.limits === undefined ? {} : v.object(s.limits, 'server.limits')
  v.keys(l, 'server.limits', ['maxHeaderBytes', 'maxHeaderCount', 'headersTimeout', 'bodyIdleTimeout', 'sendTimeout', 'maxBodySize', 'maxRequestBodySize'])
  const healthPath = v.optString(s.healthPath, 'server.healthPath') ?? '/health'
  if (!healthPath.startsWith('/')) v.fail('server.healthPath', 'a path starting with /', healthPath)
  return {
    host: v.optString(s.host, 'server.host') ?? '127.0.0.1',
    port: v.port(s.port, 'server.port') ?? 8080,
    healthPath,
    keepAliveTimeoutMs: v.duration(s.keepAliveTimeout, 'server.keepAliveTimeout', 5_000),
    shutdownTimeoutMs: v.duration(s.shutdownTimeout, 'server.shutdownTimeout', 30_000),
    limits: {
      maxHeaderBytes: v.size(l.maxHeaderBytes, 'server.limits.maxHeaderBytes', 16 * 1024, 1024),
      headersTimeoutMs: v.duration(l.headersTimeout, 'server.limits.headersTimeout', 10_000, 1),
      bodyIdleTimeoutMs: v.duration(l.bodyIdleTimeout, 'server.limits.bodyIdleTimeout', 30_000, 1),
      maxBodyBytes: v.size(l.maxBodySize, 'server.limits.maxBodySize', 1024 * 1024, 0),
      maxRequestBodyBytes: v.size(l.maxRequestBodySize, 'server.limits.maxRequestBodySize', 1024 ** 3, 0),
      maxHeaderCount: v.optInteger(l.maxHeaderCount, 'server.limits.maxHeaderCount', 1) ?? 100,
      sendTimeoutMs: v.duration(l.sendTimeout, 'server.limits.sendTimeout', 30_000, 1),
    },
    policies: policyNames(v, s.policies, 'server.policies'),
    trustedProxies: parseCidrs(v, s.trustedProxies, 'server.trustedProxies'),
    publicPaths: parsePublicPaths(v, s.publicPaths, 'server.publicPaths'),
    transport: parseTransport(v, s.transport),
    pipeBodies: s.pipeBodies === undefined ? false : typeof s.pipeBodies === 'boolean' ? s.pipeBodies : v.fail('server.pipeBodies', 'true or false', s.pipeBodies),
    workers: parseWorkers(v, s.workers),
    tls: parseListenerTls(v, s.tls, baseDir),
  }
}

function parseTransport(v: ConfigValidator, raw: unknown): TransportMode {
  if (raw === undefined) return 'auto'
  const t = v.string(raw, 'server.transport')
  if (!(TRANSPORTS as readonly string[]).includes(t)) v.fail('server.transport', TRANSPORTS.join(', '), t)
  return t as TransportMode
}

/** `server.workers`: a count, or `auto` (one per core the process may use). */
function parseWorkers(v: ConfigValidator, raw: unknown): number {
  if (raw === undefined) return 1
  if (raw === 'auto') return Math.max(1, Math.min(MAX_WORKERS, availableParallelism()))
  if (typeof raw === 'string' && /^\d+$/.test(raw)) raw = Number(raw)
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > MAX_WORKERS) v.fail('server.workers', `auto or a whole number from 1 to ${MAX_WORKERS}`, raw)
  return raw
}

/** Paths exempt from authentication: exact (`/status`) or a subtree (`/assets/*`), compared with the normalised path. */
function parsePublicPaths(v: ConfigValidator, raw: unknown, at: string): string[] {
  if (raw === undefined) return []
  return v.list(raw, at).map((x, i) => {
    const s = v.string(x, `${at}[${i}]`)
    if (!/^\/[^*?#\s]*(?:\/\*)?$/.test(s)) v.fail(`${at}[${i}]`, 'a path (/status) or a subtree (/assets/*)', s)
    return s
  })
}

/** A list of policy instance names (checked against `policies:` by the caller). */
export function policyNames(v: ConfigValidator, raw: unknown, at: string): string[] {
  if (raw === undefined) return []
  return v.list(raw, at).map((x, i) => v.string(x, `${at}[${i}]`))
}

/** A list of IP addresses or CIDR ranges, each checked. */
export function parseCidrs(v: ConfigValidator, raw: unknown, at: string): string[] {
  if (raw === undefined) return []
  const list = typeof raw === 'string' ? [raw] : v.list(raw, at)
  return list.map((x, i) => {
    const s = v.string(x, `${at}[${i}]`)
    try {
      createIpMatcher([s])
    } catch {
      v.fail(`${at}[${i}]`, 'an IP address or CIDR range such as 10.0.0.0/8 or ::1/128', s)
    }
    return s
  })
}
