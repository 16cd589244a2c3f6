/** What {@link dashboardPage} needs. */
export interface DashboardPageOptions {
  readonly title: string
  /** Where the page fetches `/stats`, such as `/admin`. */
  readonly apiBase: string
  /** URL path of the assets folder, such as `/assets` or `/admin/dashboard/assets`. */
  readonly assetBase: string
  /** Appended to every asset URL (`?token=…`), or ''. */
  readonly assetQuery: string
}

/**
 * The dashboard page: uPlot's stylesheet and script, then the page's own `dashboard.js`, which
 * fills the static skeleton below. No inline script or style, so it runs under a `script-src
 * 'self'; style-src 'self'` policy; its settings travel as `data-` attributes.
 * @example dashboardPage({ title: 'Switchboard admin', apiBase: '/admin', assetBase: '/assets', assetQuery: '' })
 */
export function dashboardPage(options: DashboardPageOptions): string {
  const asset = (name: string): string => escapeHtml(`${options.assetBase}/${name}${options.assetQuery}`)
  const title = escapeHtml(options.title)
  const figure = (id: string, label: string): string => `<div><dt>${label}</dt><dd data-testid="${id}">–</dd></div>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${asset('uPlot.min.css')}">
<link rel="stylesheet" href="${asset('dashboard.css')}">
</head>
<body data-api-base="${escapeHtml(options.apiBase)}">
<header>
<h1>${title}</h1>
<p class="status"><span class="conn" data-testid="connection">connecting</span> <span data-testid="connection-detail"></span></p>
<dl class="totals">
${figure('totals-uptime', 'uptime')}
${figure('totals-rps', 'requests/s')}
${figure('totals-requests', 'requests')}
${figure('totals-errors', '5xx')}
${figure('totals-inflight', 'in flight')}
</dl>
</header>
<noscript><p>This dashboard needs JavaScript. The same figures are JSON under ${escapeHtml(options.apiBase)}/.</p></noscript>
<main>
<section><h2>Routes</h2><div id="routes" class="cards"></div></section>
<section><h2>Upstreams</h2><div id="upstreams" class="cards"></div></section>
<section>
<h2>Recent errors</h2>
<table class="errors" data-testid="recent-errors">
<thead><tr><th>time</th><th>method</th><th>path</th><th>route</th><th>status</th><th>code</th></tr></thead>
<tbody id="errors-body"></tbody>
</table>
<p data-testid="recent-errors-empty">None since start.</p>
</section>
</main>
<script src="${asset('uPlot.iife.min.js')}"></script>
<script src="${asset('dashboard.js')}"></script>
</body>
</html>
`
}

/** `dashboard.css`: a plain layout, light or dark after the system setting. */
export const DASHBOARD_CSS = `:root { color-scheme: light dark; --fg: #111827; --muted: #6b7280; --bg: #f9fafb; --card: #fff; --line: #e5e7eb; --good: #047857; --warn: #b45309; --bad: #b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --muted: #9ca3af; --bg: #111827; --card: #1f2937; --line: #374151; --good: #34d399; --warn: #fbbf24; --bad: #f87171; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem 1.5rem 3rem; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
body.disconnected main { opacity: 0.5; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5rem 2rem; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 0.5rem; }
h3 { font-size: 1rem; margin: 0 0 0.5rem; }
h3 small { color: var(--muted); font-weight: normal; }
.status { margin: 0; color: var(--muted); }
.conn { font-weight: 600; padding: 0.1rem 0.5rem; border-radius: 999px; background: var(--line); color: var(--fg); }
.conn.ok { background: var(--good); color: #fff; }
.conn.down { background: var(--bad); color: #fff; }
dl { margin: 0; display: flex; flex-wrap: wrap; gap: 0.25rem 1.5rem; }
dt { color: var(--muted); font-size: 0.8rem; }
dd { margin: 0; font-size: 1.15rem; font-variant-numeric: tabular-nums; }
.unit { color: var(--muted); font-size: 0.8rem; margin-left: 0.2rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem; min-width: 0; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5rem; margin-top: 0.5rem; }
.chart { min-width: 0; overflow: hidden; }
.u-title { font-size: 0.8rem; font-weight: 600; }
.u-legend { font-size: 0.8rem; }
table { border-collapse: collapse; width: 100%; margin-top: 0.5rem; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.2rem 0.5rem; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: normal; font-size: 0.8rem; }
td.url { font-family: ui-monospace, monospace; word-break: break-all; }
td.num { text-align: right; }
.good { color: var(--good); }
.warn { color: var(--warn); }
.bad { color: var(--bad); }
.health { font-size: 0.85rem; font-weight: normal; }
`

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
