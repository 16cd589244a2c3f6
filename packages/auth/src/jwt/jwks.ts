import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { PolicyContext } from '@switchboard/core'

/** How {@link JwksSource} fetches and keeps a JSON Web Key Set. */
export interface JwksSourceOptions {
  readonly url: string
  readonly timeoutMs: number
  readonly cacheTtlMs: number
  readonly cooldownMs: number
  readonly maxBytes: number
  readonly now: () => number
  readonly fetch: typeof fetch
  readonly log: PolicyContext['log'] | undefined
}

/** A fetched key set, as jose's local JWKS resolver. */
export type KeySet = JWTVerifyGetKey

/**
 * One remote JWKS: fetched with a timeout and a body-size bound, kept for `cacheTtlMs`, fetched
 * again for an unknown `kid` at most once per `cooldownMs`, and after a failed fetch not tried
 * again for `cooldownMs` either (a JWKS server that is down is not hammered, and requests are not
 * held waiting for it). Concurrent callers share the one fetch in flight. A failed fetch keeps the
 * previous set, so tokens with known kids keep verifying while the JWKS server is down.
 */
export class JwksSource {
  readonly #o: JwksSourceOptions
  #set: KeySet | undefined
  #fetchedAt = Number.NEGATIVE_INFINITY
  #lastKidRefetch = Number.NEGATIVE_INFINITY
  #lastFailure = Number.NEGATIVE_INFINITY
  #inflight: Promise<void> | undefined

  constructor(options: JwksSourceOptions) {
    this.#o = options
  }

  /** The set in use now (`undefined` before the first successful fetch). */
  get set(): KeySet | undefined {
    return this.#set
  }

  /** The set to verify with: fetched first when missing or older than the TTL (unless a fetch failed within the cooldown). */
  async current(): Promise<KeySet | undefined> {
    if (this.#set === undefined || this.#o.now() - this.#fetchedAt >= this.#o.cacheTtlMs) await this.#refresh(false)
    return this.#set
  }

  /**
   * A token named a `kid` the set lacks: fetches the set again unless that was done less than
   * `cooldownMs` ago; joins the fetch in flight if there is one. Never rejects.
   */
  refreshForUnknownKid(): Promise<void> {
    return this.#refresh(true)
  }

  #refresh(unknownKid: boolean): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight
    const started = this.#o.now()
    if (started - this.#lastFailure < this.#o.cooldownMs) return Promise.resolve()
    if (unknownKid) {
      if (started - this.#lastKidRefetch < this.#o.cooldownMs) return Promise.resolve()
      this.#lastKidRefetch = started
    }
    const pending = this.#load().then(
      (set) => {
        // A rotation replaces the whole set: kids that left it stop verifying.
        this.#set = set
        this.#fetchedAt = this.#o.now()
      },
      (error: unknown) => {
        this.#lastFailure = this.#o.now()
        this.#o.log?.('warn', 'auth: JWKS fetch failed', { url: this.#o.url, error: error instanceof Error ? error.message : String(error) })
      },
    )
    this.#inflight = pending
    void pending.finally(() => {
      if (this.#inflight === pending) this.#inflight = undefined
    })
    return pending
  }

  async #load(): Promise<KeySet> {
    const { url, timeoutMs, maxBytes } = this.#o
    // One signal bounds the connect, the head and the body alike: a slow or stuck server cannot hold a request longer.
    const response = await this.#o.fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/jwk-set+json, application/json' },
      // As jose does: a redirect is not followed (it is a non-200 answer), so the key set cannot be moved elsewhere.
      redirect: 'manual',
    })
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined)
      throw new Error(`JWKS answered ${response.status}`)
    }
    const declared = Number(response.headers.get('content-length') ?? Number.NaN)
    if (declared > maxBytes) {
      await response.body?.cancel().catch(() => undefined)
      throw new Error(`JWKS larger than ${maxBytes} bytes`)
    }
    const text = new TextDecoder().decode(await readLimited(response, maxBytes))
    const json = JSON.parse(text) as JSONWebKeySet
    return createLocalJWKSet(json)
  }
}

async function readLimited(response: Response, maxBytes: number): Promise<Uint8Array> {
  if (response.body === null) return new Uint8Array(0)
  const reader = response.body.getReader()
  const parts: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw new Error(`JWKS larger than ${maxBytes} bytes`)
    }
    parts.push(value)
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
