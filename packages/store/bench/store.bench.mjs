// get/set/increment ops/s for the memory, SQLite and Redis drivers (one sequential caller each).
// Run from the repo root:  npx vitest bench --run packages/store/bench
// Needs redis-server on PATH for the Redis rows (apt-get install -y redis-server); SQLite uses a temp file.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, bench, describe } from 'vitest'
import { redisServerInstalled, startRedis } from '../../../scripts/redis-server.mjs'
import { memoryStore } from '../src/index.ts'
import { redisStore } from '../src/redis.ts'
import { sqliteStore } from '../src/sqlite.ts'

const value = new TextEncoder().encode('x'.repeat(256))
const dir = mkdtempSync(join(tmpdir(), 'switchboard-store-bench-'))
const redis = redisServerInstalled() ? await startRedis() : undefined
const stores = {
  memory: memoryStore(),
  sqlite: await sqliteStore({ path: join(dir, 'bench.db') }),
  ...(redis ? { redis: await redisStore({ url: redis.url, keyPrefix: 'bench:', failMode: 'closed' }) } : {}),
}
for (const store of Object.values(stores)) await store.set('hot', value)

afterAll(async () => {
  for (const store of Object.values(stores)) await store.close()
  await redis?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const options = { time: 500, warmupTime: 100 }
let n = 0
for (const op of ['get', 'set', 'increment']) {
  describe(op, () => {
    for (const [name, store] of Object.entries(stores)) {
      if (op === 'get') bench(name, () => store.get('hot'), options)
      if (op === 'set') bench(name, () => store.set(`k${n++ % 1000}`, value), options)
      if (op === 'increment') bench(name, () => store.increment('counter'), options)
    }
  })
}
