import type { Endpoint } from '@switchboard/core'

interface Entry<S> {
  length: number
  state: S
}

/**
 * Per-candidate-list state, rebuilt only when the list changes. The gateway passes the same array
 * while the healthy set is stable and a new array when it changes, so identity + length is the key.
 * The hit path allocates nothing; a WeakMap keeps state for several lists (one balancer shared by
 * several upstreams) without leaking them.
 */
export class ListState<S> {
  #last: readonly Endpoint[] | undefined
  #lastLength = -1
  #lastState: S | undefined
  readonly #states = new WeakMap<readonly Endpoint[], Entry<S>>()
  readonly #build: (candidates: readonly Endpoint[], previous: S | undefined) => S

  constructor(build: (candidates: readonly Endpoint[], previous: S | undefined) => S) {
    this.#build = build
  }

  get(candidates: readonly Endpoint[]): S {
    if (candidates === this.#last && candidates.length === this.#lastLength) return this.#lastState as S
    let entry = this.#states.get(candidates)
    if (entry === undefined || entry.length !== candidates.length) {
      entry = { length: candidates.length, state: this.#build(candidates, this.#lastState) }
      this.#states.set(candidates, entry)
    }
    this.#last = candidates
    this.#lastLength = candidates.length
    this.#lastState = entry.state
    return entry.state
  }
}
