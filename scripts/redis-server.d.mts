/** A running throwaway redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string
  port: number
  /** Process id, e.g. to SIGSTOP it in timeout tests. */
  pid: number
  /** SIGTERM, then waits for the process to exit. Safe to call twice. */
  stop(): Promise<void>
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Reuse this port (to restart a server in a reconnect test); a free one by default. */
  port?: number
}

/**
 * Spawns `redis-server --port <free port> --bind 127.0.0.1 --save '' --appendonly no` and waits for
 * PING. Throws an Error naming `apt-get install -y redis-server` when the binary is missing.
 * @example
 * const redis = await startRedis(); afterAll(() => redis.stop())
 */
export function startRedis(options?: StartRedisOptions): Promise<RedisServer>

/** True when a `redis-server` binary is on PATH (or `REDIS_SERVER` points at one). */
export function redisServerInstalled(): boolean
