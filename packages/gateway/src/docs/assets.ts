import { loadPackageFiles, type PackageFiles, type StaticAsset } from '../admin/dashboard/static-assets.ts'

/** One file of the docs page, held in memory. */
export type DocsAsset = StaticAsset

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

/**
 * The installed `swagger-ui-dist` files, read once per process (see {@link loadPackageFiles}).
 * Throws an Error naming the package when it is not installed.
 * @example loadSwaggerUi().files.get('swagger-ui.css')?.contentType // 'text/css; charset=utf-8'
 */
export function loadSwaggerUi(): PackageFiles {
  return loadPackageFiles('swagger-ui-dist', SWAGGER_UI_FILES, 'the /docs page')
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
