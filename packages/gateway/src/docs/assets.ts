import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** One file of the docs page, held in memory. */
export interface DocsAsset {
  readonly body: Uint8Array
  readonly contentType: string
}

/**
 * The files of `swagger-ui-dist` the page uses. Requests are looked up in this list by name, so a
 * request path is never joined onto the package folder.
 */
const SWAGGER_UI_FILES: ReadonlyArray<readonly [name: string, contentType: string]> = [
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
  ['favicon-16x16.png', 'image/png'],
]

let cached: { dir: string; version: string; files: ReadonlyMap<string, DocsAsset> } | undefined

/**
 * The installed `swagger-ui-dist` files, read once per process. Resolved from this module's URL,
 * which in the bundled CLI is the bundle's, so the app's own dependency is found there.
 * Throws an Error naming the package when it is not installed.
 * @example loadSwaggerUi().files.get('swagger-ui.css')?.contentType // 'text/css; charset=utf-8'
 */
export function loadSwaggerUi(): { dir: string; version: string; files: ReadonlyMap<string, DocsAsset> } {
  if (cached) return cached
  let manifest: string
  try {
    manifest = createRequire(import.meta.url).resolve('swagger-ui-dist/package.json')
  } catch (cause) {
    throw new Error('docs: the swagger-ui-dist package is not installed (it serves the /docs page)', { cause })
  }
  const dir = dirname(manifest)
  const version = String((JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown }).version ?? '')
  const files = new Map<string, DocsAsset>()
  for (const [name, contentType] of SWAGGER_UI_FILES) files.set(name, { body: readFileSync(join(dir, name)), contentType })
  cached = { dir, version, files }
  return cached
}

/**
 * The page: Swagger UI's stylesheet and bundle from `base`, then `init.js`. No inline script, so
 * the page works under a `script-src 'self'` policy.
 * @example docsPage('/docs', 'Switchboard gateway', '/openapi.json')
 */
export function docsPage(base: string, title: string, openapiPath: string): string {
  const b = escapeHtml(base)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${b}/swagger-ui.css">
<link rel="icon" type="image/png" href="${b}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="${b}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<noscript><p>This API reference needs JavaScript. The OpenAPI document is at <a href="${escapeHtml(openapiPath)}">${escapeHtml(openapiPath)}</a>.</p></noscript>
<div id="docs"></div>
<script src="${b}/swagger-ui-bundle.js"></script>
<script src="${b}/init.js"></script>
</body>
</html>
`
}

/**
 * `init.js`: starts Swagger UI on `#docs` with the gateway's document. The validator badge is off,
 * since it would send the document to validator.swagger.io.
 * @example docsInitScript('/openapi.json')
 */
export function docsInitScript(openapiPath: string): string {
  return `'use strict'
window.ui = SwaggerUIBundle({ url: ${jsString(openapiPath)}, dom_id: '#docs', deepLinking: true, validatorUrl: null })
`
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A JS string literal that cannot end a script or a line early. */
function jsString(text: string): string {
  return JSON.stringify(text).replace(/[<>\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
