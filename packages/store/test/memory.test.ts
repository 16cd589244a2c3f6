import { describe, expect, it } from 'vitest'
import { describeStore, manualClock } from '../src/conformance.ts'
import { encodeText, memoryStore } from '../src/index.ts'

const clock = manualClock()
describeStore({ name: 'memory', create: async () => memoryStore({ now: clock.now }), clock })

describe('memoryStore', () => {
  it('evicts the least recently used key beyond maxEntries', async () => {
    const store = memoryStore({ maxEntries: 3 })
    for (const k of ['a', 'b', 'c']) await store.set(k, encodeText(k))
    await store.get('a') // a is now the most recently used
    await store.set('d', encodeText('d'))
    expect(await store.get('b')).toBeUndefined()
    expect((await store.keys('')).sort()).toEqual(['a', 'c', 'd'])
  })

  it('evicts by bytes beyond maxBytes and refuses a single value larger than maxBytes', async () => {
    const store = memoryStore({ maxBytes: 1_000 })
    await store.set('a', new Uint8Array(400))
    await store.set('b', new Uint8Array(400))
    await store.set('c', new Uint8Array(400)) // 1 200 bytes > 1 000: a goes
    expect(await store.get('a')).toBeUndefined()
    expect(await store.get('c')).toBeDefined()
    await store.set('c', new Uint8Array(2_000))
    expect(await store.get('c')).toBeUndefined() // never the stale value
    expect(await store.get('b')).toBeDefined()
  })

  it('counts expired entries as gone in clear()', async () => {
    const c = manualClock()
    const store = memoryStore({ now: c.now })
    await store.set('a', encodeText('1'), { ttlMs: 10 })
    await store.set('b', encodeText('2'))
    c.advance(10)
    expect(await store.clear()).toBe(1)
  })

  it('names the bad option', () => {
    expect(() => memoryStore({ maxEntries: 0 })).toThrow(/maxEntries/)
    expect(() => memoryStore({ maxBytes: 1.5 })).toThrow(/maxBytes/)
  })

  it('rejects a key that is not a string and a value that is not a Uint8Array', async () => {
    const store = memoryStore()
    await expect(store.get(1 as unknown as string)).rejects.toThrow(TypeError)
    await expect(store.set('k', 'text' as unknown as Uint8Array)).rejects.toThrow(TypeError)
  })
})
