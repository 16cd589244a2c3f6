import { createUpstreamPool, type UpstreamPool, type UpstreamPoolOptions } from './upstream-pool.ts'

/** Most origins kept by the standalone helpers before the least recently used is closed. @example MAX_SHARED_POOLS // 64 */
export const MAX_SHARED_POOLS = 64

const shared = new Map<string, UpstreamPool>()

/** The shared pool for `origin` (LRU over {@link MAX_SHARED_POOLS} origins). */
export function sharedPool(origin: string, options: UpstreamPoolOptions | undefined): UpstreamPool {
  let pool = shared.get(origin)
  if (pool !== undefined) {
    // Map order is insertion order: move to the back to mark it recently used.
    shared.delete(origin)
    shared.set(origin, pool)
    return pool
  }
  pool = createUpstreamPool(origin, options)
  shared.set(origin, pool)
  if (shared.size > MAX_SHARED_POOLS) {
    const [oldest, evicted] = shared.entries().next().value as [string, UpstreamPool]
    shared.delete(oldest)
    // In-flight requests on it finish first.
    void evicted.close()
  }
  return pool
}

/**
 * Closes every pool kept by {@link proxyPass} and {@link proxyFetch} (for shutdown and tests).
 * Idle pools hold no sockets, so this is only needed to end in-flight keep-alive connections.
 * @example
 * process.on('SIGTERM', () => closeSharedPools().then(() => process.exit(0)))
 */
export async function closeSharedPools(): Promise<void> {
  const pools = [...shared.values()]
  shared.clear()
  await Promise.all(pools.map((pool) => pool.close()))
}

/** Splits a proxy target into its origin and a path prefix (`''` for `/`). */
export function splitTarget(target: string | URL): { origin: string; prefix: string } {
  const url = typeof target === 'string' ? new URL(target) : target
  const path = url.pathname
  return { origin: url.origin, prefix: path === '/' ? '' : path.endsWith('/') ? path.slice(0, -1) : path }
}
