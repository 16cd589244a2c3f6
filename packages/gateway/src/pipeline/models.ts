// The aggregated `GET /v1/models` (`models:`): the gateway answers it itself with the union of the
// models served by the healthy endpoints of the listed upstreams, in OpenAI's list format.
import { JSON_RESPONSE_HEADERS, readTextWithin, untilAborted } from '@switchboard/core'
import type { EndpointState } from '@switchboard/balancer'
import { MODELS_PATH, type ModelsConfig } from '../config/models.ts'
import type { UpstreamRuntime } from '../runtime/upstream.ts'
import type { GatewayExchange } from '../transport/exchange.ts'
import { tlsProbeFetch } from '../transport/tls.ts'

/**
 * One entry of the aggregated list: OpenAI's model object plus `upstreams`, every listed upstream
 * with a healthy endpoint serving it (in `models.upstreams` order); `owned_by` is the first of them.
 * @example const entry: ModelEntry = { id: 'llama-3-8b', object: 'model', created: 1767225600, owned_by: 'llm-a', upstreams: ['llm-a'] }
 */
export interface ModelEntry {
  readonly id: string
  readonly object: 'model'
  /** Unix seconds when this gateway first listed the model (since it last disappeared). */
  readonly created: number
  readonly owned_by: string
  readonly upstreams: readonly string[]
}

/**
 * Serves the aggregated model list of a runtime. Upstreams with `engineStats` contribute the model
 * ids their scraper read from each healthy endpoint's `/v1/models` (`endpoint.engine.models`);
 * for the others the list fetches `/v1/models` from each healthy endpoint itself: at most one fetch
 * in flight per endpoint, bounded by `timeoutMs` and `maxBodyBytes`, reused for `cacheTtlMs`. An
 * endpoint whose fetch fails contributes the last list it gave (none before a first success).
 * @example
 * const models = new ModelList(config.models!, runtime.upstreams)
 * const entries = await models.list() // [{ id: 'llama-3-8b', object: 'model', owned_by: 'llm', ... }]
 */
export class ModelList {
  /** Where the list is served. */
  readonly path: string
  readonly #config: ModelsConfig
  readonly #upstreams: UpstreamRuntime[]
  readonly #fetched = new Map<EndpointState, Fetched>()
  readonly #fetchers = new Map<UpstreamRuntime, typeof fetch>()
  readonly #firstSeen = new Map<string, number>()

  constructor(config: ModelsConfig, upstreams: ReadonlyMap<string, UpstreamRuntime>) {
    this.path = config.path
    this.#config = config
    this.#upstreams = config.upstreams.map((name) => {
      const u = upstreams.get(name)
      if (!u) throw new Error(`models.upstreams: no upstream ${name}`)
      return u
    })
  }

  /** The entries, sorted by id; each model once. */
  async list(): Promise<ModelEntry[]> {
    const perUpstream = await Promise.all(this.#upstreams.map((u) => this.#modelsOf(u)))
    const served = new Map<string, string[]>()
    perUpstream.forEach((ids, i) => {
      for (const id of ids) {
        const names = served.get(id)
        if (names === undefined) served.set(id, [this.#upstreams[i].name])
        else if (names.at(-1) !== this.#upstreams[i].name) names.push(this.#upstreams[i].name)
      }
    })
    const now = Math.floor(Date.now() / 1000)
    for (const id of this.#firstSeen.keys()) if (!served.has(id)) this.#firstSeen.delete(id)
    const entries: ModelEntry[] = []
    for (const [id, names] of served) {
      let created = this.#firstSeen.get(id)
      if (created === undefined) this.#firstSeen.set(id, (created = now))
      entries.push({ id, object: 'model', created, owned_by: names[0], upstreams: names })
    }
    return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** Answers `GET`/`HEAD` with `{ object: 'list', data: [...] }`. */
  async serve(ex: GatewayExchange): Promise<void> {
    const data = await this.list()
    await ex.respond(200, { ...JSON_RESPONSE_HEADERS }, ex.method === 'HEAD' ? undefined : JSON.stringify({ object: 'list', data }))
  }

  /** Model ids of the upstream's healthy endpoints, in endpoint order, repeats included. */
  async #modelsOf(u: UpstreamRuntime): Promise<string[]> {
    const endpoints = u.candidates()
    const lists = u.engineStats ? endpoints.map((ep) => ep.engine?.models ?? []) : await Promise.all(endpoints.map((ep) => this.#fetchedModels(u, ep)))
    return lists.flat()
  }

  #fetchedModels(u: UpstreamRuntime, ep: EndpointState): Promise<readonly string[]> {
    let f = this.#fetched.get(ep)
    if (f === undefined) this.#fetched.set(ep, (f = { models: [], at: Number.NEGATIVE_INFINITY, pending: undefined }))
    const entry = f
    if (entry.pending === undefined && performance.now() - entry.at < this.#config.cacheTtlMs) return Promise.resolve(entry.models)
    entry.pending ??= this.#fetch(u, ep)
      .then(
        (models) => void (entry.models = models),
        () => {}, // keep the last list; the endpoint's health is the health checker's business
      )
      .finally(() => {
        entry.at = performance.now()
        entry.pending = undefined
      })
    return entry.pending.then(() => entry.models)
  }

  async #fetch(u: UpstreamRuntime, ep: EndpointState): Promise<readonly string[]> {
    let fetcher = this.#fetchers.get(u)
    if (fetcher === undefined) this.#fetchers.set(u, (fetcher = u.config.tls ? tlsProbeFetch(u.config.tls) : (input, init) => fetch(input, init)))
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`models: no answer from ${ep.url} within ${this.#config.timeoutMs}ms`)), this.#config.timeoutMs)
    try {
      const url = ep.url.replace(/\/+$/, '') + MODELS_PATH
      const headers = { accept: 'application/json', ...u.config.defaultHeaders }
      const response = await untilAborted(fetcher(url, { headers, redirect: 'manual', signal: controller.signal }), controller.signal)
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => {})
        throw new Error(`models: ${url} answered ${response.status}`)
      }
      const text = await untilAborted(readTextWithin(response, this.#config.maxBodyBytes), controller.signal)
      return modelIds(JSON.parse(text))
    } finally {
      clearTimeout(timer)
    }
  }
}

/** The fetched list of one endpoint (upstreams without `engineStats`). */
interface Fetched {
  models: readonly string[]
  /** `performance.now()` of the last fetch's end. */
  at: number
  pending: Promise<void> | undefined
}

/** `data[].id` of an OpenAI model list, each once. */
function modelIds(body: unknown): string[] {
  const data = (body as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) throw new Error('models: no data list')
  const ids = new Set<string>()
  for (const item of data) {
    const id = (item as { id?: unknown } | null)?.id
    if (typeof id === 'string' && id !== '') ids.add(id)
  }
  return [...ids]
}
