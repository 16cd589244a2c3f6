import type { TokenUsage } from '@switchboard/core'
import type { Counter, MetricsRegistry } from '@switchboard/metrics'

/** Distinct clients kept apart in metrics and `/admin/usage`; later ones count as `other`. */
export const MAX_USAGE_CLIENTS = 1000
/** Distinct models kept apart (a request names its own model, so this is bounded too). */
export const MAX_USAGE_MODELS = 100
/** Rows of `/admin/usage` (client × route × model); later combinations count under client `other`. */
export const MAX_USAGE_ROWS = 10_000

/** One row of `GET /admin/usage`. */
export interface UsageRow {
  readonly client: string
  readonly route: string
  readonly model: string
  /** Metered responses (including error answers, with 0 tokens). */
  requests: number
  promptTokens: number
  completionTokens: number
  /** Requests whose figures are `counted` (the response ended without the provider's usage block). */
  counted: number
}

/**
 * Token usage per client, route and model since the gateway started (it survives reloads): the
 * `switchboard_tokens_total{route,model,client,kind}` counter and the rows of `/admin/usage`.
 * Labels are bounded ({@link MAX_USAGE_CLIENTS}, {@link MAX_USAGE_MODELS}).
 * @example
 * const ledger = new UsageLedger(new MetricsRegistry())
 * ledger.record('chat', 'team-a', { model: 'llama', promptTokens: 3, completionTokens: 5, source: 'reported' })
 * ledger.rows()[0].completionTokens // 5
 */
export class UsageLedger {
  readonly #tokens: Counter
  readonly #rows = new Map<string, UsageRow>()
  readonly #clients = new Set<string>()
  readonly #models = new Set<string>()

  constructor(registry: MetricsRegistry) {
    this.#tokens = registry.counter('switchboard_tokens_total', 'LLM tokens used, by route, model, client and kind (prompt or completion), as metered routes (routes[].usage) recorded them.', ['route', 'model', 'client', 'kind'])
  }

  /** Adds one metered response; `client` is the authenticated client or subject, else `anonymous`. */
  record(route: string, client: string, usage: TokenUsage): void {
    const c = bounded(this.#clients, client, MAX_USAGE_CLIENTS)
    const m = bounded(this.#models, usage.model ?? 'unknown', MAX_USAGE_MODELS)
    if (usage.promptTokens > 0) this.#tokens.labels(route, m, c, 'prompt').inc(usage.promptTokens)
    if (usage.completionTokens > 0) this.#tokens.labels(route, m, c, 'completion').inc(usage.completionTokens)
    let key = `${c}\u0001${route}\u0001${m}`
    let row = this.#rows.get(key)
    if (!row && this.#rows.size >= MAX_USAGE_ROWS) {
      key = `other\u0001${route}\u0001${m}`
      row = this.#rows.get(key)
    }
    if (!row) {
      row = { client: key.slice(0, key.indexOf('\u0001')), route, model: m, requests: 0, promptTokens: 0, completionTokens: 0, counted: 0 }
      this.#rows.set(key, row)
    }
    row.requests++
    row.promptTokens += usage.promptTokens
    row.completionTokens += usage.completionTokens
    if (usage.source === 'counted') row.counted++
  }

  /** Every row, as `/admin/usage` lists them. */
  rows(): UsageRow[] {
    return [...this.#rows.values()].map((r) => ({ ...r }))
  }
}

function bounded(seen: Set<string>, value: string, max: number): string {
  if (seen.has(value)) return value
  if (seen.size >= max) return 'other'
  seen.add(value)
  return value
}
