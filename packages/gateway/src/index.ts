export { loadConfigText, parseConfig, parseConfigText } from './config/index.ts'
export type { ModelsConfig } from './config/models.ts'
export {
  loadConfigFile,
  readConfigObject,
  applyOverrides,
  parseStoreFlag,
  type ConfigFormat,
  type ConfigOverrides,
  type LoadedConfig,
} from './config/load.ts'
export type {
  GatewayConfig,
  ServerConfig,
  LimitsConfig,
  UpstreamConfig,
  PoolConfig,
  TargetConfig,
  TimeoutsConfig,
  HealthCheckConfig,
  OutlierDetectionConfig,
  RouteConfig,
  RouteMatchConfig,
  RouteCacheConfig,
  RouteWebSocketConfig,
  RouteUsageConfig,
  HeaderEditConfig,
  StoreConfig,
  AdminConfig,
  DiscoveryConfig,
  ConditionValue,
  ParseConfigOptions,
  PolicyInstanceConfig,
  RetryConfig,
  RetryOn,
  RetryBudgetConfig,
  CircuitBreakerConfig,
  RouteHedgeConfig,
  ClientConfig,
  DocsConfig,
  ProxyEnvelopeConfig,
  HostMode,
} from './config/types.ts'
export { isSeed004Config, importSeed004Config, seed004ToYaml, SEED004_SERVER, type ImportSeed004Options, type ImportedSeed004Config } from './config/seed004.ts'
export { loadEnv, parseEnvFile, type LoadEnvOptions } from './config/env-file.ts'
export { sha256Tag } from './config/clients.ts'
export { Tenants, parseEnvelope, pathAllowList, TENANT_CHALLENGE } from './pipeline/tenants.ts'
export { buildOpenApi, createDocs, type DocsHandler, type OpenApiDocument } from './docs/index.ts'
export { AccessPlan, looseVariant, METHOD_OVERRIDE_HEADERS } from './runtime/access.ts'
export { createGateway, type Gateway, type GatewayOptions, type GatewayLogger } from './gateway.ts'
export {
  startPrimary,
  FleetStartError,
  isFleetWorker,
  joinFleet,
  mergeExpositions,
  mergeAdminJson,
  mergeValues,
  STATE_GAUGES,
  type FleetAdmin,
  type FleetPrimary,
  type FleetWorkerInfo,
  type PrimaryOptions,
  type RollOutcome,
  type WorkerLink,
  type WorkerAnswer,
} from './cluster/index.ts'
export {
  GatewayRegistry,
  definePlugin,
  type GatewayPlugin,
  type PluginApi,
  type LifecycleHooks,
  type ReloadSummary,
} from './registry.ts'
export { NodeExchange } from './transport/node-exchange.ts'
export type { GatewayExchange, TransportKind, ExchangeForwardOptions, ExchangeRequestOptions, ExchangeTunnelOptions, ExchangeUpgrade, UpstreamFetcher } from './transport/exchange.ts'
export { NativeExchange, nativeSaturated, type NativeRequestInit } from './transport/native-exchange.ts'
export { createNativeTransport, type NativeTransport, type NativeTransportHandler } from './transport/native.ts'
export { nativeBlocker, nativeCaveats, NATIVE_BY_DEFAULT, resolveTransport, RUNTIME, type TransportChoice } from './transport/select.ts'
export { UpstreamRuntime } from './runtime/upstream.ts'
export { Runtime, type RouteRuntime } from './runtime/runtime.ts'
export {
  CircuitBreakers,
  CircuitOpenError,
  DeadlineExceededError,
  RetryBudget,
  retryAfterMs,
  type CircuitSnapshot,
  type CircuitState,
} from './upstream/resilience.ts'
export {
  callUpstream,
  createDispatch,
  resilienceInterceptor,
  retryInterceptor,
  type AttemptContext,
  sendOnce,
  type UpstreamCall,
  type UpstreamDispatch,
  type UpstreamInterceptor,
  type Verdict,
} from './upstream/call.ts'
