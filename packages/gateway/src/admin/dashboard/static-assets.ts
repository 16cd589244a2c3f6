import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { gzip } from 'node:zlib'
import type { NodeExchange } from '../../transport/node-exchange.ts'

// Generic "files from an installed package, served from memory" helpers. They started as the
// docs page's (src/docs/handler.ts); the dashboard serves uPlot the same way.

/** One file held in memory. */
export interface StaticAsset {
  readonly body: Uint8Array
  readonly contentType: string
}

/** Files of one installed npm package, read once per process. */
export interface PackageFiles {
  /** The package folder. */
  readonly dir: string
  /** Its `version`. */
  readonly version: string
  /** By the file path given to {@link loadPackageFiles}, relative to the package folder. */
  readonly files: ReadonlyMap<string, StaticAsset>
}

/** A response held in memory: body, headers and a strong ETag over the body. */
export interface StaticEntry {
  readonly body: Uint8Array
  readonly contentType: string
  readonly cacheControl: string
  readonly etag: string
  readonly extraHeaders?: Readonly<Record<string, string>>
}

const loaded = new Map<string, PackageFiles>()

/**
 * Reads a fixed list of files of the installed package `pkg`, once per process. The package is
 * resolved from this module's URL, which in the bundled CLI is the bundle's, so the app's own
 * dependency is found there. Requests are later looked up in the returned map by name, so a
 * request path is never joined onto the package folder. Throws an Error naming the package and
 * `purpose` when it is not installed.
 * @example
 * const uplot = loadPackageFiles('uplot', [['dist/uPlot.min.css', 'text/css; charset=utf-8']], 'the admin dashboard')
 * uplot.files.get('dist/uPlot.min.css')?.contentType // 'text/css; charset=utf-8'
 */
export function loadPackageFiles(pkg: string, files: ReadonlyArray<readonly [file: string, contentType: string]>, purpose: string): PackageFiles {
  const key = `${pkg}\n${files.map(([file]) => file).join('\n')}`
  const hit = loaded.get(key)
  if (hit) return hit
  let manifest: string
  try {
    manifest = createRequire(import.meta.url).resolve(`${pkg}/package.json`)
  } catch (cause) {
    throw new Error(`the ${pkg} package is not installed (it serves ${purpose})`, { cause })
  }
  const dir = dirname(manifest)
  const version = String((JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown }).version ?? '')
  const map = new Map<string, StaticAsset>()
  for (const [file, contentType] of files) map.set(file, { body: readFileSync(join(dir, file)), contentType })
  const result: PackageFiles = { dir, version, files: map }
  loaded.set(key, result)
  return result
}

/**
 * A {@link StaticEntry} for `body`; the ETag is computed once per body object.
 * @example const css = staticEntry(new TextEncoder().encode('body{}'), 'text/css; charset=utf-8', 'no-cache')
 */
export function staticEntry(body: Uint8Array, contentType: string, cacheControl: string, extraHeaders?: Record<string, string>): StaticEntry {
  return { body, contentType, cacheControl, etag: etagOf(body), ...(extraHeaders ? { extraHeaders } : {}) }
}

/**
 * Answers GET or HEAD with `entry`: `x-content-type-options: nosniff`, gzip when the client
 * accepts it and the body is worth it (computed once per body), and 304 for a matching
 * `If-None-Match`. The caller checks the method.
 * @example await sendStatic(ex, staticEntry(bytes, 'text/javascript; charset=utf-8', 'no-cache'))
 */
export async function sendStatic(ex: NodeExchange, entry: StaticEntry): Promise<void> {
  const compressible = entry.body.byteLength >= MIN_GZIP_BYTES && !entry.contentType.startsWith('image/')
  const gz = compressible && acceptsGzip(ex.headers['accept-encoding']) ? await gzipped(entry.body) : undefined
  const etag = gz ? `${entry.etag.slice(0, -1)}-gz"` : entry.etag
  const headers: Record<string, string> = {
    'content-type': entry.contentType,
    'cache-control': entry.cacheControl,
    'x-content-type-options': 'nosniff',
    etag,
    ...entry.extraHeaders,
  }
  if (compressible) headers.vary = 'accept-encoding'
  // RFC 9110 §13.1.2: If-None-Match uses the weak comparison; a match answers 304 without a body.
  if (etagMatches(ex.headers['if-none-match'], etag)) return ex.respond(304, headers)
  const body = gz ?? entry.body
  if (gz) headers['content-encoding'] = 'gzip'
  headers['content-length'] = String(body.byteLength)
  return ex.respond(200, headers, ex.method === 'HEAD' ? undefined : body)
}

/** Smaller bodies are not worth a gzip header. */
const MIN_GZIP_BYTES = 1024

// Per body, once per process: package files are the same objects across reloads.
const etags = new WeakMap<Uint8Array, string>()
const compressed = new WeakMap<Uint8Array, Promise<Uint8Array | undefined>>()

function etagOf(body: Uint8Array): string {
  let tag = etags.get(body)
  if (tag === undefined) {
    tag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
    etags.set(body, tag)
  }
  return tag
}

/** The gzip form of a body, computed once; undefined when compression failed (then sent as is). */
function gzipped(body: Uint8Array): Promise<Uint8Array | undefined> {
  let pending = compressed.get(body)
  if (pending === undefined) {
    pending = new Promise((resolve) => gzip(body, (err, out) => resolve(err ? undefined : out)))
    compressed.set(body, pending)
  }
  return pending
}

/** RFC 9110 §12.5.3: gzip is acceptable when listed (or `*` is) with a non-zero q. */
function acceptsGzip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false
  let gzipQ: number | undefined
  let anyQ: number | undefined
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [coding, ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    const qParam = params.find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    const weight = Number.isFinite(q) ? q : 0
    if (coding === 'gzip' || coding === 'x-gzip') gzipQ = weight
    else if (coding === '*') anyQ = weight
  }
  return (gzipQ ?? anyQ ?? 0) > 0
}

function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false
  const value = Array.isArray(header) ? header.join(',') : header
  if (value.trim() === '*') return true
  const strip = (t: string): string => t.trim().replace(/^W\//, '')
  return value.split(',').some((t) => strip(t) === strip(etag))
}
