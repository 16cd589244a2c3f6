import { ConfigError, type Store } from '@switchboard/core'
import { describe, expect, it } from 'vitest'
import { describeStore, manualClock } from '../src/conformance.ts'
import {
  createStore,
  defineStoreDriver,
  encodeText,
  memoryStore,
  registerStoreDriver,
  storeDriver,
  storeDriverNames,
  type StoreDriverDefinition,
} from '../src/index.ts'
import { importOptional } from '../src/internal.ts'

interface WrappedOptions {
  capacity: number
  now?: () => number
}

const created: WrappedOptions[] = []

/** A custom driver wrapping memoryStore, as a user would write one. */
const wrapped: StoreDriverDefinition<WrappedOptions> = defineStoreDriver({
  name: 'wrapped-memory',
  parse(raw, at) {
    for (const key of Object.keys(raw)) {
      if (key !== 'capacity' && key !== 'now') throw new ConfigError(`${at}.${key}`, 'capacity or now')
    }
    const capacity = raw.capacity ?? 1_000
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity <= 0) {
      throw new ConfigError(`${at}.capacity`, 'a positive integer', { got: raw.capacity })
    }
    if (raw.now !== undefined && typeof raw.now !== 'function') throw new ConfigError(`${at}.now`, 'a function', { got: raw.now })
    return { capacity, now: raw.now as (() => number) | undefined }
  },
  create(options) {
    created.push(options)
    return memoryStore({ maxEntries: options.capacity, now: options.now })
  },
})
registerStoreDriver(wrapped)

const clock = manualClock()
describeStore({
  name: 'registered wrapped-memory driver',
  create: () => createStore({ driver: 'wrapped-memory', now: clock.now }),
  clock,
})

async function configError(p: Promise<Store>): Promise<ConfigError> {
  const err = await p.catch((e: unknown) => e)
  expect(err).toBeInstanceOf(ConfigError)
  return err as ConfigError
}

describe('store driver registry', () => {
  it('lists the built-ins and the registered driver, and looks them up by name', () => {
    expect(storeDriverNames()).toEqual(['memory', 'sqlite', 'redis', 'wrapped-memory'])
    expect(storeDriver('wrapped-memory')).toBe(wrapped)
    expect(storeDriver('sqlite')?.name).toBe('sqlite')
    expect(storeDriver('nope')).toBeUndefined()
  })

  it('creates a registered driver through createStore with its parsed options', async () => {
    const store = await createStore({ driver: 'wrapped-memory', capacity: 2 })
    expect(created.at(-1)).toEqual({ capacity: 2, now: undefined })
    for (const k of ['a', 'b', 'c']) await store.set(k, encodeText(k))
    expect((await store.keys('')).sort()).toEqual(['b', 'c']) // capacity 2 reached memoryStore
    await store.close()
  })

  it('refuses a duplicate name, built-ins included', () => {
    expect(() => registerStoreDriver(wrapped)).toThrow(/"wrapped-memory" is already registered/)
    expect(() => registerStoreDriver({ ...wrapped, name: 'memory' })).toThrow(/"memory" is already registered/)
    expect(storeDriver('memory')?.name).toBe('memory')
  })

  it('refuses a malformed definition', () => {
    expect(() => registerStoreDriver({ ...wrapped, name: 'Bad Name' })).toThrow(TypeError)
    expect(() => registerStoreDriver({ name: 'no-create', parse: () => ({}) } as unknown as StoreDriverDefinition)).toThrow(/create/)
  })

  it("carries the key path in a custom driver's parse errors", async () => {
    const err = await configError(createStore({ driver: 'wrapped-memory', capacity: -1 }))
    expect(err.path).toBe('store.capacity')
    expect(err.message).toBe('store.capacity: expected a positive integer, got -1')
  })

  it('names an unknown driver with the registered ones', async () => {
    const err = await configError(createStore({ driver: 'mongo' }))
    expect(err.path).toBe('store.driver')
    expect(err.message).toBe(`store.driver: expected one of 'memory', 'sqlite', 'redis', 'wrapped-memory', got "mongo"`)
  })

  it.each([
    [{ driver: 'sqlite', path: 42 }, 'store.path'],
    [{ driver: 'sqlite' }, 'store.path'],
    [{ driver: 'sqlite', path: ':memory:', pth: 'x' }, 'store.pth'],
    [{ driver: 'sqlite', path: ':memory:', busyTimeoutMs: -1 }, 'store.busyTimeoutMs'],
    [{ driver: 'sqlite', path: ':memory:', busyTimeoutMs: 'soon' }, 'store.busyTimeoutMs'],
    [{ driver: 'sqlite', path: ':memory:', maxEntries: 0 }, 'store.maxEntries'],
    [{ driver: 'sqlite', path: ':memory:', failMode: 'maybe' }, 'store.failMode'],
    [{ driver: 'sqlite', path: ':memory:', table: 'x; DROP' }, 'store.table'],
    [{ driver: 'sqlite', path: ':memory:', onError: 'log' }, 'store.onError'],
    [{ driver: 'memory', maxEntries: 1.5 }, 'store.maxEntries'],
    [{ driver: 'memory', maxBytes: 'lots' }, 'store.maxBytes'],
    [{ driver: 'redis', url: 'http://x' }, 'store.url'],
    [{ driver: 'redis', url: 'redis://127.0.0.1:1', commandTimeoutMs: 0 }, 'store.commandTimeoutMs'],
    [{ driver: 'redis', url: 'redis://127.0.0.1:1', failMode: 'sometimes' }, 'store.failMode'],
  ])('built-in parse of %o fails at %s', async (spec, path) => {
    const err = await configError(createStore(spec as { driver: string }))
    expect(err.path).toBe(path)
    expect(err.message.startsWith(`${path}: expected `)).toBe(true)
  })

  it('lets the memory driver take (and ignore) failMode, as gateway configs pass it to every driver', async () => {
    const store = await createStore({ driver: 'memory', failMode: 'closed' })
    expect(store.name).toBe('memory')
    await store.close()
    expect((await configError(createStore({ driver: 'memory', failMode: 'never' }))).path).toBe('store.failMode')
  })

  it('never echoes a Redis URL in a parse error', async () => {
    const err = await configError(createStore({ driver: 'redis', url: 'http://user:s3cret@host' }))
    expect(err.message).not.toContain('s3cret')
  })

  it('accepts durations and sizes as strings in object specs', async () => {
    const parsed = storeDriver('sqlite')!.parse({ path: ':memory:', busyTimeoutMs: '50ms', sweepIntervalMs: '1m', maxEntries: '5000' }, 'cfg.store')
    expect(parsed).toMatchObject({ path: ':memory:', busyTimeoutMs: 50, sweepIntervalMs: 60_000, maxEntries: 5_000 })
    const store = await createStore({ driver: 'sqlite', path: ':memory:', busyTimeoutMs: '50ms' })
    expect(store.name).toBe('sqlite')
    await store.close()
  })

  it('uses the `at` it is given as the key path prefix', () => {
    expect(() => storeDriver('sqlite')!.parse({ path: '' }, 'routes.api.cache.store')).toThrow(/^routes\.api\.cache\.store\.path: /)
  })
})

describe('optional peer dependencies', () => {
  it('rejects with an error naming the package to install when it is missing', async () => {
    const err = await importOptional('switchboard-no-such-peer', 'redis').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/^redis store needs the optional peer dependency "switchboard-no-such-peer": install it next to @switchboard\/store \(pnpm add switchboard-no-such-peer\)/)
    expect((err as Error).cause).toBeDefined()
  })

  it('loads a package that is installed', async () => {
    const mod = await importOptional<{ default: unknown }>('ioredis', 'redis')
    expect(typeof mod.default).toBe('function')
  })
})
