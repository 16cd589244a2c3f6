import type uPlot from 'uplot'

// The dashboard's browser code. dashboardScript() serialises the functions in CLIENT_FUNCTIONS
// with Function#toString into /assets/dashboard.js, so TypeScript checks them against the DOM and
// uPlot types while the page gets plain JavaScript. What makes that safe: a function here uses
// only its parameters, browser globals, types, and the other functions of the list (no imports,
// no module-level values). A bundler that renames one of them renames its callers too, and the
// entry point is called by its `.name`.

/** `GET {apiBase}/stats`: cumulative counters since the gateway started (the admin API builds it). */
export interface DashboardStats {
  /** Server time of the snapshot, ms since the epoch. */
  readonly time: number
  readonly uptimeS: number
  readonly totals: { readonly requests: number; readonly errors5xx: number; readonly inFlight: number }
  readonly routes: readonly RouteStats[]
  readonly upstreams: readonly UpstreamStats[]
  /** Newest last or first; the page shows them newest first. */
  readonly recentErrors: readonly RecentError[]
}

/** A latency histogram: cumulative bucket counts, seconds, the last bucket `"+Inf"`. */
export interface LatencyHistogram {
  readonly count: number
  readonly sum: number
  readonly buckets: ReadonlyArray<readonly [le: number | '+Inf', cumulative: number]>
}

/** One route of {@link DashboardStats}. */
export interface RouteStats {
  readonly name: string
  readonly upstream: string
  readonly requests: number
  readonly byClass: Readonly<Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>>
  readonly latency: LatencyHistogram
  /** Since start; the page shows windowed figures instead. */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
}

/** One upstream of {@link DashboardStats}. */
export interface UpstreamStats {
  readonly name: string
  readonly healthy: number
  readonly total: number
  readonly saturated: number
  readonly requests: number
  readonly errors5xx: number
  readonly latency: LatencyHistogram
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly endpoints: readonly EndpointStats[]
}

/** One endpoint of an upstream. */
export interface EndpointStats {
  readonly url: string
  readonly healthy: boolean
  /** null when circuit breakers are off. */
  readonly circuit: 'closed' | 'open' | 'half-open' | null
  readonly inFlight: number
  readonly latencyEwmaMs: number | null
}

/** One failed request (5xx or gateway error). */
export interface RecentError {
  readonly time: number
  readonly method: string
  readonly path: string
  readonly route: string | null
  readonly status: number
  /** The gateway's error code; absent when the upstream itself answered 5xx. */
  readonly code?: string
}

/** The counters of one route or upstream that the windowed figures are computed from. */
export interface CounterSample {
  readonly requests: number
  readonly errors5xx: number
  readonly latency: LatencyHistogram
}

/** One route's or upstream's figures over the time between two polls. */
export interface WindowFigures {
  readonly rps: number
  /** 5xx share of the window's requests, %; null without requests. */
  readonly errorPct: number | null
  /** null without requests. */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
}

/**
 * The `q` quantile (0..1), in seconds, of the observations made between two cumulative snapshots
 * of a histogram: bucket differences, then linear interpolation inside the bucket that holds the
 * rank, as Prometheus' `histogram_quantile` does (a rank in the `+Inf` bucket gives the highest
 * finite bound). null when the window holds no observation or the two do not line up (another
 * bucket layout, counters that went back after a restart).
 * @example windowQuantile(before.latency, now.latency, 0.99) // 0.0093
 */
export function windowQuantile(prev: LatencyHistogram | undefined, curr: LatencyHistogram, q: number): number | null {
  const now = curr.buckets
  const then = prev?.buckets
  if (now.length === 0 || (then !== undefined && then.length !== now.length)) return null
  const base = (i: number): number => (then === undefined ? 0 : then[i][1])
  const total = now[now.length - 1][1] - base(now.length - 1)
  if (!(total > 0)) return null
  const rank = q * total
  let below = 0
  let lower = 0
  for (let i = 0; i < now.length; i++) {
    const upper = now[i][0] === '+Inf' ? Infinity : Number(now[i][0])
    const upTo = now[i][1] - base(i)
    if (upTo < below) return null
    // The first non-empty bucket that reaches the rank (so rank 0 is its lower edge).
    if (upTo >= rank && upTo > below) return upper === Infinity ? lower : lower + ((upper - lower) * (rank - below)) / (upTo - below)
    below = upTo
    lower = upper
  }
  return lower
}

/**
 * Requests/s, 5xx % and p50/p99 (ms) between two samples taken `seconds` apart; null when the
 * counters went back (a restart) or no time passed.
 * @example windowFigures(before, now, 1) // { rps: 12, errorPct: 0, p50Ms: 1.2, p99Ms: 8.9 }
 */
export function windowFigures(prev: CounterSample, curr: CounterSample, seconds: number): WindowFigures | null {
  const requests = curr.requests - prev.requests
  const errors = curr.errors5xx - prev.errors5xx
  if (!(seconds > 0) || requests < 0 || errors < 0) return null
  const ms = (q: number): number | null => {
    const s = windowQuantile(prev.latency, curr.latency, q)
    return s === null ? null : s * 1000
  }
  return { rps: requests / seconds, errorPct: requests > 0 ? (100 * errors) / requests : null, p50Ms: ms(0.5), p99Ms: ms(0.99) }
}

/**
 * A figure as text: `digits` decimals, `–` for none.
 * @example formatFigure(12.345, 1) // '12.3'
 */
export function formatFigure(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits)
}

/**
 * Seconds as `42s`, `3m 12s`, `5h 03m`, `2d 4h`.
 * @example formatUptime(192) // '3m 12s'
 */
export function formatUptime(seconds: number): string {
  const s = Math.floor(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`
}

/** What the page keeps per route or upstream card. */
interface CardView {
  readonly card: HTMLElement
  readonly figures: Record<'rps' | 'p50' | 'p99' | 'errors', HTMLElement>
  readonly charts: uPlot[]
  /** Chart columns: time (s), req/s, 5xx %, p50 ms, p99 ms. */
  readonly data: [number[], Array<number | null>, Array<number | null>, Array<number | null>, Array<number | null>]
  /** Upstream cards: the health summary and the endpoints' table body. */
  readonly health?: HTMLElement
  readonly endpoints?: HTMLTableSectionElement
}

interface Views {
  readonly route: Map<string, CardView>
  readonly upstream: Map<string, CardView>
}

/** The page's entry point: reads its settings from `<body data-api-base>`, then polls once a second. */
function startDashboard(UPlot: typeof uPlot): void {
  const statsUrl = `${document.body.dataset.apiBase ?? ''}/stats`
  const token = takeToken()
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
  const views: Views = { route: new Map(), upstream: new Map() }
  let prev: DashboardStats | undefined
  window.addEventListener('resize', () => {
    for (const view of [...views.route.values(), ...views.upstream.values()]) for (const chart of view.charts) chart.setSize({ width: chartWidth(chart.root.parentElement), height: chart.height })
  })
  const poll = async (): Promise<void> => {
    try {
      const res = await fetch(statsUrl, { headers, cache: 'no-store', signal: AbortSignal.timeout(5000) })
      if (!res.ok) throw new Error(res.status === 401 ? 'HTTP 401: the admin token is missing or wrong' : `HTTP ${res.status}`)
      const stats = (await res.json()) as DashboardStats
      // The same snapshot again holds nothing new; a restarted gateway starts its counters again,
      // so no window spans the restart.
      if (prev && (stats.uptimeS < prev.uptimeS || stats.time < prev.time)) prev = undefined
      if (stats.time !== prev?.time) {
        renderStats(UPlot, views, prev, stats)
        prev = stats
      }
      setConnection(true, `updated ${new Date(stats.time).toLocaleTimeString([], { hour12: false })}`)
    } catch (err) {
      // The next good poll starts a new window (and a gap in the charts).
      prev = undefined
      setConnection(false, err instanceof Error ? err.message : String(err))
    }
    setTimeout(poll, 1000)
  }
  void poll()
}

/** The admin token: from `?token=` (then kept for the session and removed from the address bar) or the session. */
function takeToken(): string | null {
  const key = 'switchboard.admin.token'
  const url = new URL(location.href)
  const given = url.searchParams.get('token')
  let kept: string | null = null
  try {
    if (given) sessionStorage.setItem(key, given)
    kept = sessionStorage.getItem(key)
  } catch {
    // Storage is disabled: the token lives as long as this page.
  }
  if (given !== null) {
    url.searchParams.delete('token')
    history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`)
  }
  return given || kept
}

function setConnection(ok: boolean, detail: string): void {
  const state = byTestId('connection')
  state.textContent = ok ? 'connected' : 'disconnected'
  state.className = ok ? 'conn ok' : 'conn down'
  byTestId('connection-detail').textContent = detail
  document.body.classList.toggle('disconnected', !ok)
}

function renderStats(UPlot: typeof uPlot, views: Views, prev: DashboardStats | undefined, stats: DashboardStats): void {
  const seconds = prev ? (stats.time - prev.time) / 1000 : 0
  const x = stats.time / 1000
  const totals = prev ? windowFigures(totalsSample(prev), totalsSample(stats), seconds) : null
  byTestId('totals-uptime').textContent = formatUptime(stats.uptimeS)
  byTestId('totals-rps').textContent = formatFigure(totals?.rps, 1)
  byTestId('totals-requests').textContent = String(stats.totals.requests)
  byTestId('totals-errors').textContent = String(stats.totals.errors5xx)
  byTestId('totals-inflight').textContent = String(stats.totals.inFlight)

  const routeSample = (r: RouteStats): CounterSample => ({ requests: r.requests, errors5xx: r.byClass['5xx'] ?? 0, latency: r.latency })
  const seen = new Set<string>()
  for (const route of stats.routes) {
    seen.add(route.name)
    const view = cardView(UPlot, views.route, 'route', route.name, `→ ${route.upstream}`)
    const before = prev?.routes.find((r) => r.name === route.name)
    updateCard(view, x, before ? windowFigures(routeSample(before), routeSample(route), seconds) : null)
  }
  dropCards(views.route, seen)

  seen.clear()
  for (const upstream of stats.upstreams) {
    seen.add(upstream.name)
    const view = cardView(UPlot, views.upstream, 'upstream', upstream.name, '')
    const before = prev?.upstreams.find((u) => u.name === upstream.name)
    updateCard(view, x, before ? windowFigures(before, upstream, seconds) : null)
    updateEndpoints(view, upstream)
  }
  dropCards(views.upstream, seen)
  updateErrors(stats.recentErrors)
}

function totalsSample(stats: DashboardStats): CounterSample {
  return { requests: stats.totals.requests, errors5xx: stats.totals.errors5xx, latency: { count: 0, sum: 0, buckets: [] } }
}

/** The card of one route or upstream, created on first sight. */
function cardView(UPlot: typeof uPlot, views: Map<string, CardView>, kind: 'route' | 'upstream', name: string, subtitle: string): CardView {
  const existing = views.get(name)
  if (existing) return existing
  const id = `${kind}-${name}`
  const card = el('article', 'card')
  card.dataset.testid = id
  const title = el('h3', '', name)
  if (subtitle) title.append(' ', el('small', '', subtitle))
  const list = el('dl', 'figures')
  const figure = (key: string, label: string, unit: string): HTMLElement => {
    const value = el('span', 'value', '–')
    value.dataset.testid = `${id}-${key}`
    const dd = el('dd')
    dd.append(value, el('span', 'unit', unit))
    const item = el('div')
    item.append(el('dt', '', label), dd)
    list.append(item)
    return value
  }
  const figures = { rps: figure('rps', 'requests/s', ''), p50: figure('p50', 'p50', 'ms'), p99: figure('p99', 'p99', 'ms'), errors: figure('errors', '5xx', '%') }
  const charts = el('div', 'charts')
  charts.dataset.testid = `${id}-charts`
  card.append(title, list, charts)
  let health: HTMLElement | undefined
  let endpoints: HTMLTableSectionElement | undefined
  if (kind === 'upstream') {
    health = el('span', 'health', '–')
    health.dataset.testid = `${id}-health`
    title.append(' ', health)
    const table = el('table', 'endpoints')
    const head = el('tr')
    for (const h of ['endpoint', 'health', 'circuit', 'in flight', 'latency (EWMA)']) head.append(el('th', '', h))
    table.createTHead().append(head)
    endpoints = table.createTBody()
    card.append(table)
  }
  document.getElementById(kind === 'route' ? 'routes' : 'upstreams')!.append(card)
  const data: CardView['data'] = [[], [], [], [], []]
  const traffic = el('div', 'chart')
  const latency = el('div', 'chart')
  charts.append(traffic, latency)
  const view: CardView = {
    card,
    figures,
    data,
    charts: [makeChart(UPlot, traffic, 'traffic', [data[0], data[1], data[2]]), makeChart(UPlot, latency, 'latency', [data[0], data[3], data[4]])],
    ...(health && endpoints ? { health, endpoints } : {}),
  }
  views.set(name, view)
  return view
}

function makeChart(UPlot: typeof uPlot, target: HTMLElement, kind: 'traffic' | 'latency', data: uPlot.AlignedData): uPlot {
  const fromZero: uPlot.Range.Function = (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1]
  const line = (label: string, stroke: string, scale: string): uPlot.Series => ({ label, stroke, scale, width: 1.5, spanGaps: false, points: { show: false } })
  // The legend is a key only: the current figures are the text above the charts.
  const options: uPlot.Options =
    kind === 'traffic'
      ? {
          width: chartWidth(target),
          height: 160,
          legend: { live: false },
          title: 'requests/s · 5xx %',
          series: [{}, line('req/s', '#2563eb', 'rps'), line('5xx %', '#dc2626', '%')],
          scales: { x: { time: true }, rps: { range: fromZero }, '%': { range: (_u, _min, max) => [0, Math.max(5, max * 1.1)] } },
          axes: [{}, { scale: 'rps' }, { scale: '%', side: 1, grid: { show: false } }],
        }
      : {
          width: chartWidth(target),
          height: 160,
          legend: { live: false },
          title: 'latency ms',
          series: [{}, line('p50', '#059669', 'ms'), line('p99', '#d97706', 'ms')],
          scales: { x: { time: true }, ms: { range: fromZero } },
          axes: [{}, { scale: 'ms' }],
        }
  return new UPlot(options, data, target)
}

function chartWidth(target: HTMLElement | null): number {
  return Math.max(240, Math.floor(target?.clientWidth ?? 0))
}

/** Adds a point (a gap when `figures` is null), keeps the last two minutes, updates the text. */
function updateCard(view: CardView, x: number, figures: WindowFigures | null): void {
  const [xs, rps, errors, p50, p99] = view.data
  xs.push(x)
  rps.push(figures ? figures.rps : null)
  errors.push(figures ? figures.errorPct : null)
  p50.push(figures ? figures.p50Ms : null)
  p99.push(figures ? figures.p99Ms : null)
  while (xs.length > 0 && xs[0] < x - 120) for (const column of view.data) column.shift()
  view.charts[0].setData([xs, rps, errors])
  view.charts[1].setData([xs, p50, p99])
  view.card.dataset.points = String(xs.length)
  view.figures.rps.textContent = formatFigure(figures?.rps, 1)
  view.figures.p50.textContent = formatFigure(figures?.p50Ms, 2)
  view.figures.p99.textContent = formatFigure(figures?.p99Ms, 2)
  view.figures.errors.textContent = formatFigure(figures?.errorPct, 1)
}

function updateEndpoints(view: CardView, upstream: UpstreamStats): void {
  if (!view.health || !view.endpoints) return
  view.health.textContent = `${upstream.healthy}/${upstream.total} healthy${upstream.saturated > 0 ? `, ${upstream.saturated} saturated` : ''}`
  view.health.className = upstream.healthy === 0 ? 'health bad' : upstream.healthy < upstream.total ? 'health warn' : 'health good'
  view.endpoints.replaceChildren(
    ...upstream.endpoints.map((ep) => {
      const row = el('tr')
      const health = el('td', ep.healthy ? 'good' : 'bad', ep.healthy ? 'healthy' : 'unhealthy')
      health.dataset.testid = `endpoint-${ep.url}-health`
      const circuit = el('td', ep.circuit === 'open' ? 'bad' : ep.circuit === 'half-open' ? 'warn' : '', ep.circuit ?? 'off')
      circuit.dataset.testid = `endpoint-${ep.url}-circuit`
      row.append(el('td', 'url', ep.url), health, circuit, el('td', 'num', String(ep.inFlight)), el('td', 'num', `${formatFigure(ep.latencyEwmaMs, 2)} ms`))
      return row
    }),
  )
}

function updateErrors(errors: readonly RecentError[]): void {
  const rows = [...errors].sort((a, b) => b.time - a.time)
  byTestId('recent-errors-empty').hidden = rows.length > 0
  document.getElementById('errors-body')!.replaceChildren(
    ...rows.map((e) => {
      const row = el('tr')
      row.dataset.testid = 'recent-error'
      const time = el('td', '', new Date(e.time).toLocaleTimeString([], { hour12: false }))
      time.title = new Date(e.time).toISOString()
      row.append(time, el('td', '', e.method), el('td', 'url', e.path), el('td', '', e.route ?? '–'), el('td', 'num bad', String(e.status)), el('td', '', e.code ?? '–'))
      return row
    }),
  )
}

function dropCards(views: Map<string, CardView>, keep: ReadonlySet<string>): void {
  for (const [name, view] of views) {
    if (keep.has(name)) continue
    for (const chart of view.charts) chart.destroy()
    view.card.remove()
    views.delete(name)
  }
}

function byTestId(id: string): HTMLElement {
  const found = document.querySelector<HTMLElement>(`[data-testid="${CSS.escape(id)}"]`)
  if (!found) throw new Error(`the page has no [data-testid="${id}"]`)
  return found
}

/** An element with a class and text (always as text, never as HTML: paths and names come from clients). */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text) node.textContent = text
  return node
}

const CLIENT_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [
  windowQuantile,
  windowFigures,
  formatFigure,
  formatUptime,
  startDashboard,
  takeToken,
  setConnection,
  renderStats,
  totalsSample,
  cardView,
  makeChart,
  chartWidth,
  updateCard,
  updateEndpoints,
  updateErrors,
  dropCards,
  byTestId,
  el,
]

/**
 * The page's script, `/assets/dashboard.js`: the functions above as plain JavaScript in one
 * closure, started with the page's global `uPlot`.
 * @example const js = dashboardScript() // served with content-type text/javascript
 */
export function dashboardScript(): string {
  const body = CLIENT_FUNCTIONS.map((fn) => fn.toString()).join('\n\n')
  return `'use strict';\n(() => {\n${body}\n\n${startDashboard.name}(window.uPlot)\n})()\n`
}
