import { checkRateLimitRequest, type Store, type StoreSetOptions } from '@switchboard/core'
import { Buffer } from 'node:buffer'
import type { Redis, RedisOptions } from 'ioredis'
import { StoreUnavailableError } from './errors.ts'
import { checkKey, checkValue, type FailMode, importOptional, limitOf, plainBytes, stepOf, ttlOf, unrefTimer } from './internal.ts'

export { StoreUnavailableError } from './errors.ts'
export type { FailMode } from './internal.ts'

/** Default `connectTimeoutMs` of {@link redisStore}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000
/** Default `commandTimeoutMs` of {@link redisStore}. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1_000
/** Default `maxReconnectDelayMs` of {@link redisStore}. */
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 2_000

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. */
  url: string
  /** Prepended to every key (and stripped from `keys()` results), e.g. `'gw:'`. @default '' */
  keyPrefix?: string
  /** How long to wait for the TCP connection and handshake, in ms. @default 2_000 */
  connectTimeoutMs?: number
  /** How long any single command may take before it counts as a failure, in ms. @default 1_000 */
  commandTimeoutMs?: number
  /** Longest pause between reconnection attempts, in ms; attempts back off up to it and never stop. @default 2_000 */
  maxReconnectDelayMs?: number
  /**
   * `'open'`: when Redis is unavailable, reads return `undefined`, writes resolve as no-ops,
   * `setIfAbsent`/`compareAndSet`/`delete` return false, `increment` 0, `keys` [] and `clear` 0.
   * `'closed'`: those calls reject with {@link StoreUnavailableError}. Redis errors that are not
   * about availability (a non-integer counter, wrong type) reject in both modes. @default 'open'
   */
  failMode?: FailMode
  /** Called with every availability failure (also the swallowed ones in `'open'` mode), for logs and metrics. @default undefined */
  onError?: (err: unknown) => void
}

/**
 * A store in Redis, shared by every gateway instance pointing at it; data lives as long as
 * Redis keeps it (configure RDB/AOF there for persistence). `setIfAbsent`, `compareAndSet` and
 * `increment` are atomic across clients (SET NX, Lua scripts); `keys`/`clear` use SCAN, never KEYS,
 * and are not atomic snapshots. A Redis that goes away never hangs a caller: commands fail fast
 * while disconnected, each command has a timeout, and the client reconnects in the background.
 * ioredis is an optional peer dependency, imported only when this factory runs; without it the
 * factory rejects with an Error naming the package to install.
 * @example
 * const store = await redisStore({ url: 'redis://127.0.0.1:6379', keyPrefix: 'gw:', failMode: 'open' })
 */
export async function redisStore(options: RedisStoreOptions): Promise<Store> {
  const url = options?.url
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw new TypeError('redisStore: url must start with redis:// or rediss://')
  const keyPrefix = options.keyPrefix ?? ''
  if (typeof keyPrefix !== 'string') throw new TypeError('redisStore: keyPrefix must be a string')
  const connectTimeoutMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS)
  const commandTimeoutMs = positiveInteger('commandTimeoutMs', options.commandTimeoutMs, DEFAULT_COMMAND_TIMEOUT_MS)
  const maxDelay = positiveInteger('maxReconnectDelayMs', options.maxReconnectDelayMs, DEFAULT_MAX_RECONNECT_DELAY_MS)
  const failMode = options.failMode ?? 'open'
  if (failMode !== 'open' && failMode !== 'closed') throw new TypeError("redisStore: failMode must be 'open' or 'closed'")
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('redisStore: onError must be a function')

  const mod = await importOptional<{ default: new (url: string, options: RedisOptions) => Redis }>('ioredis', 'redis')
  const client = new mod.default(url, {
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    // Fail fast while disconnected instead of queueing: a caller must never wait on a dead Redis.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(25 * 2 ** Math.min(attempt, 16), maxDelay),
    lazyConnect: false,
  })
  client.defineCommand('switchboardCas', { numberOfKeys: 1, lua: CAS_SCRIPT })
  client.defineCommand('switchboardIncr', { numberOfKeys: 1, lua: INCREMENT_SCRIPT })
  // No numberOfKeys: the first argument says how many (one key per window). ioredis sends
  // EVALSHA and falls back to EVAL when the server answers NOSCRIPT (after a restart or FLUSH).
  client.defineCommand('switchboardRateLimit', { lua: RATE_LIMIT_SCRIPT })
  client.on('error', (err: unknown) => options.onError?.(err))
  await firstConnection(client, connectTimeoutMs)
  return new RedisStore(client, keyPrefix, failMode, options.onError)
}

interface ScriptCommands {
  switchboardCas(key: string, expected: Buffer, value: Buffer, ttl: string): Promise<number>
  switchboardIncr(key: string, by: number, ttl: string): Promise<number>
  switchboardRateLimit(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>
}

class RedisStore implements Store {
  readonly name = 'redis'
  #client: Redis & ScriptCommands
  #prefix: string
  #failMode: FailMode
  #onError: ((err: unknown) => void) | undefined
  #closed = false

  constructor(client: Redis, prefix: string, failMode: FailMode, onError: ((err: unknown) => void) | undefined) {
    this.#client = client as Redis & ScriptCommands
    this.#prefix = prefix
    this.#failMode = failMode
    this.#onError = onError
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key)
    return this.#run(async () => {
      const value = await this.#client.getBuffer(this.#prefix + key)
      return value === null ? undefined : plainBytes(value)
    }, undefined)
  }

  async set(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<void> {
    checkKey(key)
    checkValue(value)
    const ttl = ttlOf(options)
    await this.#run(async () => {
      if (ttl === undefined) await this.#client.set(this.#prefix + key, toBuffer(value))
      else await this.#client.set(this.#prefix + key, toBuffer(value), 'PX', ttl)
    }, undefined)
  }

  async setIfAbsent(key: string, value: Uint8Array, options?: StoreSetOptions): Promise<boolean> {
    checkKey(key)
    checkValue(value)
    const ttl = ttlOf(options)
    return this.#run(async () => {
      const reply =
        ttl === undefined
          ? await this.#client.set(this.#prefix + key, toBuffer(value), 'NX')
          : await this.#client.set(this.#prefix + key, toBuffer(value), 'PX', ttl, 'NX')
      return reply === 'OK'
    }, false)
  }

  async compareAndSet(
    key: string,
    expected: Uint8Array | undefined,
    value: Uint8Array,
    options?: StoreSetOptions,
  ): Promise<boolean> {
    if (expected === undefined) return this.setIfAbsent(key, value, options)
    checkKey(key)
    checkValue(value)
    checkValue(expected)
    const ttl = ttlOf(options)
    return this.#run(
      async () => (await this.#client.switchboardCas(this.#prefix + key, toBuffer(expected), toBuffer(value), String(ttl ?? ''))) === 1,
      false,
    )
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key)
    return this.#run(async () => (await this.#client.del(this.#prefix + key)) > 0, false)
  }

  async increment(key: string, by?: number, options?: StoreSetOptions): Promise<number> {
    checkKey(key)
    const step = stepOf(by)
    const ttl = ttlOf(options)
    return this.#run(async () => Number(await this.#client.switchboardIncr(this.#prefix + key, step, String(ttl ?? ''))), 0)
  }

  async keys(prefix: string, options?: { limit?: number }): Promise<string[]> {
    const limit = limitOf(options)
    if (limit === 0) return []
    return this.#run(async () => {
      const found = new Set<string>() // SCAN may return a key twice
      await this.#scan(prefix, (batch) => {
        for (const key of batch) {
          found.add(key.slice(this.#prefix.length))
          if (found.size >= limit) return false
        }
        return true
      })
      return [...found]
    }, [])
  }

  async clear(prefix = ''): Promise<number> {
    return this.#run(async () => {
      let removed = 0
      await this.#scan(prefix, async (batch) => {
        if (batch.length > 0) removed += await this.#client.unlink(...batch)
        return true
      })
      return removed
    }, 0)
  }

  /**
   * One atomic round trip: a Lua script reads every window, decides and writes back with PX
   * expiries. Without `nowMs` the script reads the server's `TIME`, so a fleet shares one clock.
   * In `failMode: 'open'` an unavailable Redis yields an allowing result with `failedOpen: true`.
   */
  async rateLimit(key: string, request: RateLimitRequest): Promise<RateLimitResult> {
    checkKey(key)
    checkRateLimitRequest(request)
    const keys = request.windows.map((_, i) => `${this.#prefix}${key}#${i}`)
    const args: (string | number)[] = [request.algorithm, request.nowMs === undefined ? '' : String(request.nowMs), String(request.cost ?? 1)]
    for (const w of request.windows) args.push(String(w.limit), String(w.windowMs), String(w.burst ?? w.limit))
    const failedOpen: RateLimitResult = {
      allowed: true,
      retryAfterMs: 0,
      windows: request.windows.map((w) => ({ remaining: w.limit, resetMs: 0, retryAfterMs: 0 })),
      failedOpen: true,
    }
    return this.#run<RateLimitResult>(async () => {
      const reply = await this.#client.switchboardRateLimit(keys.length, ...keys, ...args)
      const n = reply.map(Number)
      return {
        allowed: n[0] === 1,
        retryAfterMs: n[1]!,
        windows: request.windows.map((_, i) => ({ remaining: n[2 + i * 3]!, resetMs: n[3 + i * 3]!, retryAfterMs: n[4 + i * 3]! })),
      }
    }, failedOpen)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      await this.#client.quit()
    } catch {
      // Not connected: nothing to say goodbye to.
    } finally {
      this.#client.disconnect()
    }
  }

  /** Walks every key under `prefix` with SCAN; `visit` returns false to stop early. */
  async #scan(prefix: string, visit: (batch: string[]) => boolean | Promise<boolean>): Promise<void> {
    const match = `${escapeGlob(this.#prefix + prefix)}*`
    let cursor = '0'
    do {
      const [next, batch] = await this.#client.scan(cursor, 'MATCH', match, 'COUNT', 500)
      cursor = next
      if (!(await visit(batch))) return
    } while (cursor !== '0')
  }

  async #run<T>(op: () => Promise<T>, fallback: T): Promise<T> {
    if (this.#closed) throw new Error('redisStore: the store is closed')
    try {
      return await op()
    } catch (err) {
      if (isReplyError(err)) throw replyError(err)
      this.#onError?.(err)
      if (this.#failMode === 'open') return fallback
      throw new StoreUnavailableError({ cause: err })
    }
  }
}

// Compares byte strings (Lua strings are binary-safe); ARGV[3] is the TTL in ms or ''.
const CAS_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1`

// The TTL goes on only when INCRBY creates the counter (fixed windows); ARGV[2] is the TTL in ms or ''.
const INCREMENT_SCRIPT = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`

// The Lua twin of packages/policies/src/rate-limit/algorithms.ts (see there for the reasoning);
// the rate-limit conformance suite holds both to identical answers. KEYS: one per window. ARGV:
// algorithm, nowMs ('' = server TIME), cost, then limit, windowMs, burst for each window. Replies
// { allowed, retryAfterMs, then remaining, resetMs, retryAfterMs per window }.
const RATE_LIMIT_SCRIPT = `
local alg = ARGV[1]
local now = tonumber(ARGV[2])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[3])
local function fmt(x) return string.format('%d', x) end
local function nums(s, sep)
  local out = {}
  if not s or s == '' then return out end
  for part in string.gmatch(s, '[^' .. sep .. ']+') do
    local v = tonumber(part)
    if v == nil then return {} end
    out[#out + 1] = v
  end
  return out
end
local function step(L, W, B, s, consume)
  if alg == 'fixed-window' then
    local start = now - (now % W)
    local v = nums(s, ':')
    local count = 0
    if #v == 2 and v[1] == start then count = v[2] end
    local ok = count + cost <= L
    local used = count
    if ok and consume then used = count + cost end
    local resetMs = start + W - now
    local r = 0
    if used > 0 then r = resetMs end
    local ra = 0
    if not ok then ra = resetMs end
    return ok, math.max(0, L - used), r, ra, fmt(start) .. ':' .. fmt(used), resetMs + W
  elseif alg == 'sliding-window-counter' then
    local start = now - (now % W)
    local curr, prev = 0, 0
    local v = nums(s, ':')
    if #v == 3 then
      if v[1] >= start then
        start = v[1]; curr = v[2]; prev = v[3]
      elseif v[1] == start - W then
        prev = v[2]
      end
    end
    local elapsed = math.max(0, now - start)
    local weighted = math.floor((prev * (W - elapsed)) / W)
    local ok = weighted + curr + cost <= L
    if ok and consume then curr = curr + cost end
    local used = weighted + curr
    local toEnd = math.max(0, start + W - now)
    local ra = 0
    if not ok then
      local x = L - curr - cost
      if x >= 0 and prev > 0 then
        ra = W - math.ceil(((x + 1) * W) / prev) + 1 - elapsed
      else
        local y = L - cost
        if y >= 0 and curr > 0 then ra = toEnd + W - math.ceil(((y + 1) * W) / curr) + 1 else ra = toEnd + W end
      end
      ra = math.max(1, ra)
    end
    local r = 0
    if curr > 0 then r = toEnd + W elseif weighted > 0 then r = toEnd end
    return ok, math.max(0, L - used), r, ra, fmt(start) .. ':' .. fmt(curr) .. ':' .. fmt(prev), toEnd + 2 * W
  elseif alg == 'sliding-window-log' then
    local log = {}
    for _, t in ipairs(nums(s, ',')) do
      if t > now - W then log[#log + 1] = t end
    end
    local ok = #log + cost <= L
    if ok and consume then
      local at = #log
      while at > 0 and log[at] > now do at = at - 1 end
      for _ = 1, cost do table.insert(log, at + 1, now) end
    end
    local ra = 0
    if not ok then
      if cost > L then ra = W else ra = math.max(1, log[#log + cost - L] + W - now) end
    end
    local r = 0
    if #log > 0 then r = log[#log] + W - now end
    local parts = {}
    for i, t in ipairs(log) do parts[i] = fmt(t) end
    return ok, math.max(0, L - #log), r, ra, table.concat(parts, ','), math.max(1, r) + W
  else
    local full = B * W
    local units, ts = full, now
    local v = nums(s, ':')
    if #v == 2 then
      ts = math.max(v[2], now)
      units = math.min(full, v[1] + math.max(0, now - v[2]) * L)
    end
    local need = cost * W
    local ok = units >= need
    if ok and consume then units = units - need end
    local r = math.ceil((full - units) / L)
    local ra = 0
    if not ok then
      if need > full then ra = math.max(1, r) else ra = math.max(1, math.ceil((need - units) / L)) end
    end
    return ok, math.floor(units / W), r, ra, fmt(units) .. ':' .. fmt(ts), r + W
  end
end
local n = #KEYS
local states = {}
local allowed = true
for i = 1, n do
  states[i] = redis.call('GET', KEYS[i])
  if states[i] == false then states[i] = nil end
  local base = 3 + (i - 1) * 3
  local ok = step(tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), states[i], false)
  if not ok then allowed = false end
end
local out = { 0, 0 }
if allowed then out[1] = 1 end
local retry = 0
for i = 1, n do
  local base = 3 + (i - 1) * 3
  local _, rem, r, ra, state, ttl = step(tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), states[i], allowed)
  redis.call('SET', KEYS[i], state, 'PX', fmt(ttl))
  if ra > retry then retry = ra end
  out[#out + 1] = rem
  out[#out + 1] = r
  out[#out + 1] = ra
end
if not allowed then out[2] = retry end
return out`

/** Resolves on the first ready, error or timeout, whichever comes first: the store starts either way. */
function firstConnection(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      client.off('ready', done)
      client.off('error', done)
      client.off('end', done)
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    unrefTimer(timer)
    client.once('ready', done)
    client.once('error', done)
    client.once('end', done)
  })
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`redisStore: ${name} must be a positive integer`)
  return n
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Redis's own error replies (the server answered): these are bugs or bad data, not outages. */
function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError'
}

function replyError(err: Error): Error {
  if (/not an integer/i.test(err.message)) return new TypeError('increment: value is not an integer', { cause: err })
  if (/overflow/i.test(err.message)) return new RangeError('increment: result would overflow', { cause: err })
  return err
}

/** Escapes Redis glob metacharacters so a prefix matches literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

type RateLimitCapability = NonNullable<Store['rateLimit']>
type RateLimitRequest = Parameters<RateLimitCapability>[1]
type RateLimitResult = Awaited<ReturnType<RateLimitCapability>>
