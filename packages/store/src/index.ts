export { memoryStore, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES, type MemoryStoreOptions } from './memory.ts'
export { createStore, type StoreSpec } from './create-store.ts'
export { StoreUnavailableError, StoreOpenError, type StoreOpenReason } from './errors.ts'
export {
  defineStoreDriver,
  registerStoreDriver,
  storeDriver,
  storeDriverNames,
  memoryStoreDriver,
  sqliteStoreDriver,
  redisStoreDriver,
  type StoreDriverDefinition,
} from './registry.ts'
export type { SqliteStoreOptions } from './sqlite.ts'
export type { RedisStoreOptions, FailMode } from './redis.ts'
export type { StoreErrorInfo } from './internal.ts'
export { encodeText, decodeText, encodeJson, decodeJson, type Store, type StoreSetOptions } from '@switchboard/core'
