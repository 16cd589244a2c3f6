import { createHash } from 'node:crypto'
import { gzip } from 'node:zlib'
import { GatewayError, MethodNotAllowedError } from '@switchboard/core'
import type { GatewayConfig } from '../config/types.ts'
import type { NodeExchange } from '../transport/node-exchange.ts'
import { docsInitScript, docsPage, loadSwaggerUi } from './assets.ts'
import { buildOpenApi, type OpenApiDocument } from './openapi.ts'

/** What the router calls for the docs page, its assets and the OpenAPI document. */
export interface DocsHandler {
  /** True for `docs.path`, anything under it, and `docs.openapiPath` (a normalised request path). */
  matches(normalizedPath: string): boolean
  /**
   * Answers GET/HEAD from memory. An unknown file under `docs.path` throws 404 `ERR_NOT_FOUND`,
   * another method 405 `ERR_METHOD_NOT_ALLOWED` (with `Allow: GET, HEAD` set on the exchange), so
   * the pipeline writes them like every other error.
   */
  serve(ex: NodeExchange): Promise<void>
  /** The OpenAPI document served at `docs.openapiPath`. */
  readonly document: OpenApiDocument
}

/** Assets may be cached for an hour; the page and the document are revalidated (they change on reload). */
const ASSET_CACHE = 'public, max-age=3600'
const REVALIDATE = 'no-cache'
/** The page loads only its own files and talks only to its own origin (Try it out). */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
const ALLOW = 'GET, HEAD'
/** Smaller bodies are not worth a gzip header. */
const MIN_GZIP_BYTES = 1024

interface Entry {
  readonly body: Uint8Array
  readonly contentType: string
  readonly cacheControl: string
  readonly etag: string
  readonly extraHeaders?: Readonly<Record<string, string>>
}

/**
 * Serves `docs.path` (a Swagger UI page, offline: every asset comes from the installed
 * `swagger-ui-dist`), its assets under `docs.path/`, and the OpenAPI 3.1 document of
 * {@link buildOpenApi} at `docs.openapiPath`. Everything is built and read into memory here; files
 * are looked up by exact path in that table, never read from disk per request. Throws when
 * `config.docs` is unset or `swagger-ui-dist` is not installed.
 * @example
 * const docs = createDocs(config)
 * if (docs.matches(ex.normalizedPath)) await docs.serve(ex)
 */
export function createDocs(config: GatewayConfig): DocsHandler {
  const docs = config.docs
  if (!docs) throw new RangeError('createDocs needs config.docs')
  const base = docs.path.replace(/\/+$/, '')
  if (base === '') throw new RangeError('docs.path must be a path below /, such as /docs')
  const document = buildOpenApi(config)
  const ui = loadSwaggerUi()
  const encoder = new TextEncoder()
  const table = new Map<string, Entry>()
  const page = entry(encoder.encode(docsPage(base, docs.title, docs.openapiPath)), 'text/html; charset=utf-8', REVALIDATE, {
    'content-security-policy': PAGE_CSP,
    'referrer-policy': 'no-referrer',
  })
  table.set(base, page)
  table.set(`${base}/`, page)
  table.set(`${base}/init.js`, entry(encoder.encode(docsInitScript(docs.openapiPath)), 'text/javascript; charset=utf-8', REVALIDATE))
  for (const [name, asset] of ui.files) table.set(`${base}/${name}`, entry(asset.body, asset.contentType, ASSET_CACHE))
  table.set(docs.openapiPath, entry(encoder.encode(JSON.stringify(document, null, 2)), 'application/json; charset=utf-8', REVALIDATE))
  const prefix = `${base}/`

  return {
    document,
    matches: (path) => table.has(path) || path.startsWith(prefix),
    async serve(ex) {
      // Errors below are written by the pipeline; they get nosniff too.
      ex.responseHeaders['x-content-type-options'] = 'nosniff'
      const found = table.get(ex.normalizedPath)
      if (!found) throw new GatewayError(404, 'ERR_NOT_FOUND', 'Not found')
      if (ex.method !== 'GET' && ex.method !== 'HEAD') {
        ex.responseHeaders.allow = ALLOW
        throw new MethodNotAllowedError()
      }
      await send(ex, found)
    },
  }
}

async function send(ex: NodeExchange, e: Entry): Promise<void> {
  const compressible = e.body.byteLength >= MIN_GZIP_BYTES && !e.contentType.startsWith('image/')
  const gz = compressible && acceptsGzip(ex.headers['accept-encoding']) ? await gzipped(e.body) : undefined
  const etag = gz ? `${e.etag.slice(0, -1)}-gz"` : e.etag
  const headers: Record<string, string> = {
    'content-type': e.contentType,
    'cache-control': e.cacheControl,
    'x-content-type-options': 'nosniff',
    etag,
    ...e.extraHeaders,
  }
  if (compressible) headers.vary = 'accept-encoding'
  // RFC 9110 §13.1.2: If-None-Match uses the weak comparison; a match answers 304 without a body.
  if (etagMatches(ex.headers['if-none-match'], etag)) return ex.respond(304, headers)
  const body = gz ?? e.body
  if (gz) headers['content-encoding'] = 'gzip'
  headers['content-length'] = String(body.byteLength)
  return ex.respond(200, headers, ex.method === 'HEAD' ? undefined : body)
}

function entry(body: Uint8Array, contentType: string, cacheControl: string, extraHeaders?: Record<string, string>): Entry {
  return { body, contentType, cacheControl, etag: etagOf(body), ...(extraHeaders ? { extraHeaders } : {}) }
}

// Per body, once per process: the swagger-ui files are the same objects across reloads.
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
