/**
 * Default for {@link TunnelGroupCloseOptions.timeoutMs}.
 * @example await group.closeAll({ timeoutMs: DEFAULT_GROUP_CLOSE_TIMEOUT_MS * 2 })
 */
export const DEFAULT_GROUP_CLOSE_TIMEOUT_MS: number = 5_000

/**
 * Options of {@link TunnelGroup.closeAll}.
 * @example await group.closeAll({ code: 1012, reason: 'restarting', timeoutMs: 2_000 })
 */
export interface TunnelGroupCloseOptions {
  /** Close code sent to both sides of every frame-mode tunnel (1000–1003, 1007–1014 or 3000–4999). @default 1001 */
  code?: number
  /** Close reason sent with {@link code}, at most 123 bytes of UTF-8. @default 'going away' */
  reason?: string
  /**
   * How long frame-mode tunnels get for their close handshakes and transparent tunnels get to end on
   * their own; whatever is still open then is destroyed.
   * @default DEFAULT_GROUP_CLOSE_TIMEOUT_MS (5_000)
   */
  timeoutMs?: number
}

/**
 * A set of live tunnels that can be closed together, e.g. on SIGTERM. Pass it to
 * `tunnelUpgrade()` as `options.group`; a tunnel leaves the group once both of its sides are closed.
 * @example
 * const group = createTunnelGroup()
 * process.once('SIGTERM', () => void group.closeAll({ timeoutMs: 10_000 }))
 */
export interface TunnelGroup {
  /** Tunnels in the group right now (handshaking or open). */
  readonly size: number
  /**
   * Frame-mode tunnels get a close frame (`code`, `reason`) on both sides, at once or as soon as
   * their handshake completes; transparent tunnels (which cannot be sent a frame) are left alone.
   * Resolves once every tunnel is closed: at the latest `timeoutMs` after the call, when the rest
   * is destroyed. Tunnels that join while it runs get the same treatment. A call while another one
   * runs returns that one's promise. Never rejects; throws a `RangeError` for bad options.
   */
  closeAll(options?: TunnelGroupCloseOptions): Promise<void>
}

/** What a tunnel gives its group (internal). */
export interface TunnelMember {
  /** Starts a graceful close (frame mode: close frames now or once open; transparent: nothing). */
  close(code: number, reason: string): void
  /** Tears both sides down now; the tunnel then leaves through its normal close path. */
  destroy(): void
}

/** Registers a tunnel with a group; returns the function the tunnel calls once it has ended (internal). */
export type JoinGroup = (member: TunnelMember) => () => void

const joiners = new WeakMap<TunnelGroup, JoinGroup>()

/**
 * Creates an empty {@link TunnelGroup}.
 * @example
 * const group = createTunnelGroup()
 * server.on('upgrade', (req, socket, head) => void tunnelUpgrade(req, socket, head, { target, group }))
 * process.once('SIGTERM', async () => {
 *   server.close()
 *   await group.closeAll({ code: 1001, reason: 'going away', timeoutMs: 10_000 })
 * })
 */
export function createTunnelGroup(): TunnelGroup {
  const group = new Group()
  joiners.set(group, (member) => group.join(member))
  return group
}

/**
 * The join function of a group made by {@link createTunnelGroup}; throws for anything else.
 * @example const join = groupJoiner(options.group)
 */
export function groupJoiner(group: TunnelGroup): JoinGroup {
  const join = joiners.get(group)
  if (join === undefined) throw new TypeError('group must be created with createTunnelGroup()')
  return join
}

class Group implements TunnelGroup {
  #members = new Set<TunnelMember>()
  #drainWaiters: Array<() => void> = []
  #closing: { code: number; reason: string; done: Promise<void>; pastDeadline: boolean } | undefined

  get size(): number {
    return this.#members.size
  }

  join(member: TunnelMember): () => void {
    this.#members.add(member)
    const closing = this.#closing
    if (closing !== undefined) {
      // After tunnelUpgrade() has finished wiring it; past the deadline there is nothing left to wait for.
      queueMicrotask(() => (closing.pastDeadline ? member.destroy() : member.close(closing.code, closing.reason)))
    }
    return () => {
      if (!this.#members.delete(member) || this.#members.size > 0) return
      for (const wake of this.#drainWaiters.splice(0)) wake()
    }
  }

  closeAll(options: TunnelGroupCloseOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing.done
    const code = options.code ?? 1001
    const reason = options.reason ?? 'going away'
    const timeoutMs = options.timeoutMs ?? DEFAULT_GROUP_CLOSE_TIMEOUT_MS
    if (!isSendableCode(code)) throw new RangeError('closeAll code must be 1000–1003, 1007–1014 or 3000–4999')
    // RFC 6455 §5.5: a control frame payload is at most 125 bytes, two of them the code.
    if (new TextEncoder().encode(reason).byteLength > 123) throw new RangeError('closeAll reason must be at most 123 bytes')
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError('closeAll timeoutMs must be a non-negative number')
    const run = async (): Promise<void> => {
      for (const member of this.#members) member.close(code, reason)
      let timer: ReturnType<typeof setTimeout> | undefined
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))
      await Promise.race([this.#drained(), deadline])
      clearTimeout(timer)
      closing.pastDeadline = true
      for (const member of [...this.#members]) member.destroy()
      await this.#drained()
    }
    const closing = { code, reason, done: Promise.resolve(), pastDeadline: false }
    this.#closing = closing
    closing.done = run().finally(() => {
      if (this.#closing === closing) this.#closing = undefined
    })
    return closing.done
  }

  #drained(): Promise<void> {
    if (this.#members.size === 0) return Promise.resolve()
    return new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
  }
}

function isSendableCode(code: number): boolean {
  return Number.isInteger(code) && ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))
}
