export {
  createDiscovery,
  DEFAULT_HEADER,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_NAMESPACE,
  DEFAULT_SUCCESS_STATUSES,
  DEFAULT_TTL_MS,
  type Discovery,
  type DiscoveryEvent,
  type DiscoveryOptions,
  type DiscoveryStats,
  type DiscoveryTransport,
  type RememberedRoute,
  type ReplayMode,
  type StatusPattern,
} from './discovery.ts'
export { canonicalJson, MAX_CANONICAL_DEPTH, payloadHash } from './payload-hash.ts'
export {
  importLegacyConfig,
  isLegacyConfig,
  legacyToYaml,
  type ImportLegacyOptions,
  type ImportedConfig,
  type ImportedRoute,
  type ImportedUpstream,
} from './legacy-config.ts'
