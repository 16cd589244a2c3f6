// One setup for the discovery tests: real upstreams in order, discovery over them, a real proxy in
// front; everything is closed after each test.
import { afterEach } from 'vitest'
import type { Store } from '@switchboard/core'
import { memoryStore } from '@switchboard/store'
import { createDiscovery, type Discovery, type DiscoveryEvent, type DiscoveryOptions } from '../src/index.ts'
import { createTestTransport, deadOrigin, startProxy, startUpstream, type Upstream, type UpstreamHandler } from './harness.ts'

export interface Setup {
  upstreams: Upstream[]
  endpoints: string[]
  discovery: Discovery
  store: Store
  events: DiscoveryEvent[]
  url: (path?: string) => string
}

/** Registers the after-each cleanup; returns `setup()` and the cleanup list for anything else. */
export function useDiscoverySetup(): {
  cleanups: Array<() => Promise<void>>
  setup: (handlers: (UpstreamHandler | 'dead')[], options?: Partial<DiscoveryOptions>) => Promise<Setup>
} {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!()
  })
  async function setup(handlers: (UpstreamHandler | 'dead')[], options: Partial<DiscoveryOptions> = {}): Promise<Setup> {
    const upstreams: Upstream[] = []
    const endpoints: string[] = []
    for (const h of handlers) {
      if (h === 'dead') {
        endpoints.push(await deadOrigin())
        continue
      }
      const u = await startUpstream(h)
      cleanups.push(() => u.close())
      upstreams.push(u)
      endpoints.push(u.origin)
    }
    const store = options.store ?? memoryStore()
    const transport = createTestTransport()
    cleanups.push(() => transport.close())
    const events: DiscoveryEvent[] = []
    const discovery = createDiscovery({ endpoints, store, transport, onEvent: (e) => events.push(e), ...options })
    const proxy = await startProxy([discovery.middleware()])
    cleanups.push(() => proxy.close())
    return { upstreams, endpoints, discovery, store, events, url: (path = '/') => proxy.origin + path }
  }
  return { cleanups, setup }
}
