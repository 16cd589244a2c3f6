/**
 * At most `max` tasks at once, at most `maxQueued` waiting behind them; past that a task is
 * refused at once instead of joining an unbounded queue.
 */
export class ConcurrencyLimiter {
  readonly #max: number
  readonly #maxQueued: number
  #active = 0
  readonly #queue: Array<() => void> = []

  constructor(max: number, maxQueued: number) {
    this.#max = max
    this.#maxQueued = maxQueued
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.#queue.length
  }

  /** Runs `task` when a slot is free; `undefined` (task not run) when the queue is full too. */
  run<T>(task: () => Promise<T>): Promise<T> | undefined {
    if (this.#active < this.#max) return this.#start(task)
    if (this.#queue.length >= this.#maxQueued) return undefined
    return new Promise<void>((resolve) => this.#queue.push(resolve)).then(() => this.#start(task, true))
  }

  async #start<T>(task: () => Promise<T>, handedOver = false): Promise<T> {
    // A queued task inherits the slot of the one that finished, so `active` never dips between them.
    if (!handedOver) this.#active++
    try {
      return await task()
    } finally {
      const next = this.#queue.shift()
      if (next) next()
      else this.#active--
    }
  }
}
