import type { Store } from '@switchboard/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

/** A clock the suite moves by hand; pass its `now` to the driver's `now` option. */
export interface TestClock {
  /** Current time in epoch milliseconds. */
  now(): number
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void
}

/**
 * A manual clock for TTL tests without sleeping.
 * @example
 * const clock = manualClock(); const store = memoryStore({ now: clock.now }); clock.advance(1000)
 */
export const manualClock = (start = 1_700_000_000_000): TestClock => {
  let t = start
  return {
    now: () => t,
    advance: (ms) => {
      t += ms
    },
  }
}

/** Options of {@link describeStore}. */
export interface DescribeStoreOptions {
  /** Suite title, usually the driver name. */
  name: string
  /** Returns a fresh, open store. Called before every test (and more often when `shared`). */
  create: () => Promise<Store>
  /**
   * The clock the created stores read. When given, TTL tests advance it; otherwise they use real
   * TTLs of a few hundred ms and poll until the key is gone (no timing is asserted). @default undefined
   */
  clock?: TestClock
  /**
   * True when two stores returned by `create()` see the same data (one SQLite file, one Redis).
   * The race tests then spread their calls over several instances. @default false
   */
  shared?: boolean
}

/**
 * The conformance suite every Store driver passes: each method, TTL expiry, atomic increment
 * under 200 concurrent calls, compare-and-set and set-if-absent races, prefix isolation for
 * `keys`/`clear`, byte-exact binary and 1 MiB values. Keys get a random per-run prefix, so a
 * shared Redis is fine, but the `clear()` test removes every key in the store.
 * @example
 * describeStore({ name: 'memory', create: async () => memoryStore({ now: clock.now }), clock })
 */
export function describeStore(options: DescribeStoreOptions): void {
  const { clock } = options
  const run = `conformance-${Math.random().toString(36).slice(2, 10)}`
  let counter = 0

  describe(`Store conformance: ${options.name}`, () => {
    let store: Store
    let extra: Store[] = []
    let p = ''

    beforeEach(async () => {
      p = `${run}:${++counter}:`
      store = await options.create()
    })

    afterEach(async () => {
      await store.clear(`${run}:`)
      for (const s of [store, ...extra]) await s.close()
      extra = []
    })

    /** `n` stores that share data (the same one when the driver cannot share). */
    const instances = async (n: number): Promise<Store[]> => {
      if (!options.shared) return Array.from({ length: n }, () => store)
      while (extra.length < n - 1) extra.push(await options.create())
      return [store, ...extra.slice(0, n - 1)]
    }

    /** Lets `ttlMs` pass: advances the clock, or polls real time until `gone()` holds. */
    const elapse = async (ttlMs: number, gone: () => Promise<boolean>): Promise<void> => {
      if (clock) {
        clock.advance(ttlMs)
        return
      }
      for (let i = 0; i < 200 && !(await gone()); i++) await sleep(25)
    }

    it('has a name', () => {
      expect(typeof store.name).toBe('string')
      expect(store.name.length).toBeGreaterThan(0)
    })

    it('get returns undefined for a missing key', async () => {
      expect(await store.get(`${p}missing`)).toBeUndefined()
    })

    it('set then get round-trips, and set replaces the value', async () => {
      await store.set(`${p}k`, bytes('one'))
      expect(text(await store.get(`${p}k`))).toBe('one')
      await store.set(`${p}k`, bytes('two'))
      expect(text(await store.get(`${p}k`))).toBe('two')
    })

    it('returns plain Uint8Arrays and keeps its own copy of what was set', async () => {
      const value = bytes('abc')
      await store.set(`${p}k`, value)
      value[0] = 0x7a
      const got = await store.get(`${p}k`)
      expect(got).toBeInstanceOf(Uint8Array)
      expect(text(got)).toBe('abc')
    })

    it('round-trips binary values byte for byte: 0x00, every byte, invalid UTF-8, empty', async () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i)
      const invalidUtf8 = new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80, 0x00, 0xf8])
      const nul = new Uint8Array([0, 0, 0])
      const sub = all.subarray(10, 20) // a view with an offset into a larger buffer
      const cases: [string, Uint8Array][] = [['all', all], ['utf8', invalidUtf8], ['nul', nul], ['empty', new Uint8Array(0)], ['sub', sub]]
      for (const [name, value] of cases) await store.set(`${p}${name}`, value)
      for (const [name, value] of cases) {
        const got = await store.get(`${p}${name}`)
        expect(got, name).toBeInstanceOf(Uint8Array)
        expect(Array.from(got ?? []), name).toEqual(Array.from(value))
      }
    })

    it('round-trips a 1 MiB value', async () => {
      const big = new Uint8Array(1 << 20)
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >>> 9)) & 0xff
      await store.set(`${p}big`, big)
      const got = await store.get(`${p}big`)
      expect(got?.byteLength).toBe(big.byteLength)
      expect(sameBytes(got, big)).toBe(true)
    })

    it('rejects a non-positive or non-finite ttlMs with a RangeError', async () => {
      await expect(store.set(`${p}k`, bytes('v'), { ttlMs: 0 })).rejects.toThrow(RangeError)
      await expect(store.set(`${p}k`, bytes('v'), { ttlMs: -5 })).rejects.toThrow(RangeError)
      await expect(store.increment(`${p}k`, 1, { ttlMs: Number.NaN })).rejects.toThrow(RangeError)
      expect(await store.get(`${p}k`)).toBeUndefined()
    })

    it('expires keys after ttlMs', async () => {
      await store.set(`${p}short`, bytes('v'), { ttlMs: clock ? 1_000 : 150 })
      await store.set(`${p}long`, bytes('v'), { ttlMs: 60_000 })
      if (clock) {
        clock.advance(999)
        expect(text(await store.get(`${p}short`))).toBe('v')
      }
      await elapse(1_000, async () => (await store.get(`${p}short`)) === undefined)
      expect(await store.get(`${p}short`)).toBeUndefined()
      expect(text(await store.get(`${p}long`))).toBe('v')
      expect(await store.keys(p)).toEqual([`${p}long`])
    })

    it('set without ttlMs replaces an earlier TTL', async () => {
      await store.set(`${p}k`, bytes('v1'), { ttlMs: clock ? 1_000 : 150 })
      await store.set(`${p}k`, bytes('v2'))
      if (clock) clock.advance(5_000)
      else await sleep(400)
      expect(text(await store.get(`${p}k`))).toBe('v2')
    })

    it('setIfAbsent writes only when the key is absent or expired', async () => {
      expect(await store.setIfAbsent(`${p}k`, bytes('first'), { ttlMs: clock ? 1_000 : 150 })).toBe(true)
      expect(await store.setIfAbsent(`${p}k`, bytes('second'))).toBe(false)
      expect(text(await store.get(`${p}k`))).toBe('first')
      await elapse(1_000, async () => (await store.get(`${p}k`)) === undefined)
      expect(await store.setIfAbsent(`${p}k`, bytes('third'))).toBe(true)
      expect(text(await store.get(`${p}k`))).toBe('third')
    })

    it('setIfAbsent: exactly one of 50 concurrent callers wins', async () => {
      const stores = await instances(4)
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => stores[i % stores.length].setIfAbsent(`${p}race`, bytes(`v${i}`))),
      )
      expect(results.filter(Boolean)).toHaveLength(1)
      expect(text(await store.get(`${p}race`))).toBe(`v${results.indexOf(true)}`)
    })

    it('compareAndSet swaps only on a byte-exact match', async () => {
      await store.set(`${p}k`, new Uint8Array([1, 0, 2]))
      expect(await store.compareAndSet(`${p}k`, new Uint8Array([1, 0]), bytes('x'))).toBe(false)
      expect(await store.compareAndSet(`${p}k`, new Uint8Array([1, 0, 3]), bytes('x'))).toBe(false)
      expect(Array.from((await store.get(`${p}k`)) ?? [])).toEqual([1, 0, 2])
      expect(await store.compareAndSet(`${p}k`, new Uint8Array([1, 0, 2]), bytes('x'))).toBe(true)
      expect(text(await store.get(`${p}k`))).toBe('x')
    })

    it('compareAndSet with expected undefined writes only when absent', async () => {
      expect(await store.compareAndSet(`${p}k`, bytes('nope'), bytes('x'))).toBe(false)
      expect(await store.get(`${p}k`)).toBeUndefined()
      expect(await store.compareAndSet(`${p}k`, undefined, bytes('a'))).toBe(true)
      expect(await store.compareAndSet(`${p}k`, undefined, bytes('b'))).toBe(false)
      expect(text(await store.get(`${p}k`))).toBe('a')
    })

    it('compareAndSet applies ttlMs and treats an expired key as absent', async () => {
      await store.set(`${p}k`, bytes('a'))
      expect(await store.compareAndSet(`${p}k`, bytes('a'), bytes('b'), { ttlMs: clock ? 1_000 : 150 })).toBe(true)
      await elapse(1_000, async () => (await store.get(`${p}k`)) === undefined)
      expect(await store.get(`${p}k`)).toBeUndefined()
      expect(await store.compareAndSet(`${p}k`, bytes('b'), bytes('c'))).toBe(false)
      expect(await store.compareAndSet(`${p}k`, undefined, bytes('c'))).toBe(true)
    })

    it('compareAndSet: exactly one of 50 concurrent swaps from the same value wins', async () => {
      const stores = await instances(4)
      await store.set(`${p}cas`, bytes('v0'))
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => stores[i % stores.length].compareAndSet(`${p}cas`, bytes('v0'), bytes(`w${i}`))),
      )
      expect(results.filter(Boolean)).toHaveLength(1)
      expect(text(await store.get(`${p}cas`))).toBe(`w${results.indexOf(true)}`)
    })

    it('compareAndSet loops make a lossless counter under contention', async () => {
      const stores = await instances(3)
      await store.set(`${p}n`, bytes('0'))
      const bump = async (s: Store): Promise<void> => {
        for (let attempt = 0; attempt < 1_000; attempt++) {
          const current = await s.get(`${p}n`)
          if (await s.compareAndSet(`${p}n`, current, bytes(String(Number(text(current)) + 1)))) return
        }
        throw new Error('compareAndSet never succeeded')
      }
      await Promise.all(Array.from({ length: 30 }, (_, i) => bump(stores[i % stores.length])))
      expect(text(await store.get(`${p}n`))).toBe('30')
    })

    it('delete returns whether a live key existed', async () => {
      await store.set(`${p}k`, bytes('v'))
      expect(await store.delete(`${p}k`)).toBe(true)
      expect(await store.get(`${p}k`)).toBeUndefined()
      expect(await store.delete(`${p}k`)).toBe(false)
      await store.set(`${p}t`, bytes('v'), { ttlMs: clock ? 1_000 : 150 })
      await elapse(1_000, async () => (await store.get(`${p}t`)) === undefined)
      expect(await store.delete(`${p}t`)).toBe(false)
    })

    it('increment creates, adds, subtracts and stores decimal text', async () => {
      expect(await store.increment(`${p}c`)).toBe(1)
      expect(await store.increment(`${p}c`, 5)).toBe(6)
      expect(await store.increment(`${p}c`, -10)).toBe(-4)
      expect(await store.increment(`${p}c`, 0)).toBe(-4)
      expect(text(await store.get(`${p}c`))).toBe('-4')
      await store.set(`${p}d`, bytes('41'))
      expect(await store.increment(`${p}d`)).toBe(42)
    })

    it('increment rejects a non-integer step and a non-integer value', async () => {
      await expect(store.increment(`${p}c`, 1.5)).rejects.toThrow(RangeError)
      await store.set(`${p}s`, bytes('not a number'))
      await expect(store.increment(`${p}s`)).rejects.toThrow(TypeError)
      expect(text(await store.get(`${p}s`))).toBe('not a number')
    })

    it('increment applies ttlMs on creation only (fixed window)', async () => {
      const ttl = clock ? 1_000 : 400
      expect(await store.increment(`${p}w`, 1, { ttlMs: ttl })).toBe(1)
      if (clock) clock.advance(600)
      // A later TTL does not extend the window.
      expect(await store.increment(`${p}w`, 1, { ttlMs: 60_000 })).toBe(2)
      await elapse(400, async () => (await store.get(`${p}w`)) === undefined)
      expect(await store.get(`${p}w`)).toBeUndefined()
      expect(await store.increment(`${p}w`, 1, { ttlMs: ttl })).toBe(1)
    })

    it('increment is atomic: 200 concurrent calls give an exact count', async () => {
      const stores = await instances(4)
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => stores[i % stores.length].increment(`${p}hits`)))
      expect(await store.increment(`${p}hits`, 0)).toBe(200)
      expect(new Set(results).size).toBe(200)
      expect(Math.min(...results)).toBe(1)
      expect(Math.max(...results)).toBe(200)
    })

    it('keys lists live keys under a prefix, honours limit, and leaves other prefixes out', async () => {
      for (const k of ['a:1', 'a:2', 'a:3', 'ab', 'b:1']) await store.set(`${p}${k}`, bytes(k))
      expect((await store.keys(`${p}a:`)).sort()).toEqual([`${p}a:1`, `${p}a:2`, `${p}a:3`])
      expect((await store.keys(`${p}a`)).sort()).toEqual([`${p}a:1`, `${p}a:2`, `${p}a:3`, `${p}ab`])
      const limited = await store.keys(`${p}a:`, { limit: 2 })
      expect(limited).toHaveLength(2)
      for (const k of limited) expect(k.startsWith(`${p}a:`)).toBe(true)
      expect(await store.keys(`${p}zzz`)).toEqual([])
    })

    it('keys and clear treat glob and LIKE characters in the prefix literally', async () => {
      for (const k of ['x*[1]?%_', 'x*[1]?%_2', 'xa[1]?%_', 'x*[1]?%-']) await store.set(`${p}${k}`, bytes(k))
      expect((await store.keys(`${p}x*[1]?%_`)).sort()).toEqual([`${p}x*[1]?%_`, `${p}x*[1]?%_2`])
      expect(await store.clear(`${p}x*[1]?%_`)).toBe(2)
      expect((await store.keys(p)).sort()).toEqual([`${p}x*[1]?%-`, `${p}xa[1]?%_`])
    })

    it('clear removes keys under a prefix only and returns how many', async () => {
      for (const k of ['a:1', 'a:2', 'b:1']) await store.set(`${p}${k}`, bytes(k))
      expect(await store.clear(`${p}a:`)).toBe(2)
      expect(await store.get(`${p}a:1`)).toBeUndefined()
      expect(text(await store.get(`${p}b:1`))).toBe('b:1')
      expect(await store.clear(`${p}a:`)).toBe(0)
    })

    it('clear without a prefix removes everything', async () => {
      await store.set(`${p}one`, bytes('1'))
      await store.set(`${p}two`, bytes('2'))
      expect(await store.clear()).toBeGreaterThanOrEqual(2)
      expect(await store.keys(p)).toEqual([])
      expect(await store.get(`${p}one`)).toBeUndefined()
    })
  })
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (s: string): Uint8Array => encoder.encode(s)
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : decoder.decode(b))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
