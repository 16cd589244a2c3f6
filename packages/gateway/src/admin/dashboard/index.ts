import { MethodNotAllowedError } from '@switchboard/core'
import type { NodeExchange } from '../../transport/node-exchange.ts'
import { dashboardScript } from './client.ts'
import { DASHBOARD_CSS, dashboardPage } from './page.ts'
import { loadPackageFiles, sendStatic, staticEntry, type StaticEntry } from './static-assets.ts'

export type {
  CounterSample,
  DashboardStats,
  EndpointStats,
  LatencyHistogram,
  RecentError,
  RouteStats,
  UpstreamStats,
  WindowFigures,
} from './client.ts'

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** Where the page fetches JSON (`{apiBase}/stats`), such as `/admin`: a path on the page's own origin. */
  readonly apiBase: string
  /** The page's title and heading. @default 'Switchboard admin' */
  readonly title?: string
}

/** The admin dashboard: a page and its assets, answered from memory. */
export interface Dashboard {
  /**
   * Answers `sub`, the path below the dashboard root (the tail of `ex.normalizedPath`): '' or '/'
   * is the page, '/assets/NAME' an asset. Resolves false, without answering, when `sub` is not
   * the dashboard's (so the caller answers its 404). GET and HEAD only: another method on a
   * dashboard path throws 405 `ERR_METHOD_NOT_ALLOWED` with `Allow: GET, HEAD` set on the
   * exchange. The caller checks the admin token first.
   */
  serve(ex: NodeExchange, sub: string): Promise<boolean>
}

/** The page's policy: its own scripts, styles and JSON only; no inline code, no framing. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
/**
 * The page may carry the token in its asset URLs: never stored. Assets are revalidated (ETag, so
 * a 304) rather than cached for a time, so a gateway upgrade never mixes old and new files, and
 * `private`, since their URLs may hold the token.
 */
const PAGE_CACHE = 'no-store'
const ASSET_CACHE = 'private, no-cache'
const ALLOW = 'GET, HEAD'
const JS = 'text/javascript; charset=utf-8'
const CSS = 'text/css; charset=utf-8'
/** uPlot's files the page uses: served name → file in the `uplot` package. */
const UPLOT_FILES: ReadonlyArray<readonly [name: string, file: string, contentType: string]> = [
  ['uPlot.iife.min.js', 'dist/uPlot.iife.min.js', JS],
  ['uPlot.min.css', 'dist/uPlot.min.css', CSS],
]
/** Page bodies kept per mount root and token query (one or two in practice). */
const MAX_PAGES = 16

/**
 * The admin dashboard: per route and upstream, live uPlot charts of requests/s, p50/p99 latency
 * and 5xx rate over the last two minutes with the current figures as text next to them; each
 * endpoint's health and circuit state; recent errors. The page polls `{apiBase}/stats` once a
 * second and computes the figures from the difference of two polls. It works offline: uPlot
 * comes from the installed `uplot` package, read once into memory, and files are looked up by
 * name in a fixed table. When the page URL has `?token=`, the asset URLs carry it too, and the
 * page keeps it in `sessionStorage`, removes it from the address bar and sends it as
 * `Authorization: Bearer`. Throws a RangeError for a bad `apiBase`, an Error when `uplot` is
 * not installed.
 * @example
 * const dashboard = createDashboard({ apiBase: '/admin' })
 * if (!(await dashboard.serve(ex, ex.normalizedPath.slice('/admin/dashboard'.length)))) throw new NoRouteError()
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const apiBase = options.apiBase.replace(/\/+$/, '')
  if (!options.apiBase.startsWith('/') || options.apiBase.startsWith('//') || /[?#\s\\]/.test(options.apiBase)) {
    throw new RangeError(`dashboard apiBase must be a path such as /admin, not ${JSON.stringify(options.apiBase)}`)
  }
  const title = options.title ?? 'Switchboard admin'
  const uplot = loadPackageFiles(
    'uplot',
    UPLOT_FILES.map(([, file, type]) => [file, type] as const),
    'the admin dashboard',
  )
  const encoder = new TextEncoder()
  const assets = new Map<string, StaticEntry>()
  for (const [name, file, type] of UPLOT_FILES) assets.set(`/assets/${name}`, staticEntry(uplot.files.get(file)!.body, type, ASSET_CACHE))
  assets.set('/assets/dashboard.js', staticEntry(encoder.encode(dashboardScript()), JS, ASSET_CACHE))
  assets.set('/assets/dashboard.css', staticEntry(encoder.encode(DASHBOARD_CSS), CSS, ASSET_CACHE))
  const pages = new Map<string, StaticEntry>()

  function page(root: string, token: string | null): StaticEntry {
    const assetQuery = token ? `?token=${encodeURIComponent(token)}` : ''
    const key = `${root}\n${assetQuery}`
    let found = pages.get(key)
    if (!found) {
      const html = dashboardPage({ title, apiBase, assetBase: `${root}/assets`, assetQuery })
      found = staticEntry(encoder.encode(html), 'text/html; charset=utf-8', PAGE_CACHE, {
        'content-security-policy': PAGE_CSP,
        'referrer-policy': 'no-referrer',
      })
      if (pages.size >= MAX_PAGES) pages.delete(pages.keys().next().value!)
      pages.set(key, found)
    }
    return found
  }

  return {
    async serve(ex, sub) {
      const isPage = sub === '' || sub === '/'
      const asset = isPage ? undefined : assets.get(sub)
      if (!isPage && !asset) return false
      // Errors below are written by the caller's pipeline; they get nosniff too.
      ex.responseHeaders['x-content-type-options'] = 'nosniff'
      if (ex.method !== 'GET' && ex.method !== 'HEAD') {
        ex.responseHeaders.allow = ALLOW
        throw new MethodNotAllowedError()
      }
      if (asset) {
        await sendStatic(ex, asset)
        return true
      }
      // The assets live below the page's own path, whatever the caller mounted it at.
      const path = ex.normalizedPath
      const root = (path.endsWith(sub) ? path.slice(0, path.length - sub.length) : path).replace(/\/+$/, '')
      const token = ex.request.query ? new URLSearchParams(ex.request.query).get('token') : null
      await sendStatic(ex, page(root, token))
      return true
    },
  }
}
