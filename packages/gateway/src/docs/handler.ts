import { GatewayError, MethodNotAllowedError } from '@switchboard/core'
import type { GatewayConfig } from '../config/types.ts'
import type { NodeExchange } from '../transport/node-exchange.ts'
import { sendStatic, staticEntry as entry, type StaticEntry as Entry } from '../admin/dashboard/static-assets.ts'
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
      await sendStatic(ex, found)
    },
  }
}
