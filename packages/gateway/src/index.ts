export {
  loadConfigText,
  parseConfig,
  type GatewayConfig,
  type ServerConfig,
  type LimitsConfig,
  type UpstreamConfig,
  type TargetConfig,
  type TimeoutsConfig,
  type HealthCheckConfig,
  type OutlierDetectionConfig,
  type RouteConfig,
  type RouteMatchConfig,
  type RouteCacheConfig,
  type RouteWebSocketConfig,
  type HeaderEditConfig,
  type StoreConfig,
  type AdminConfig,
  type DiscoveryConfig,
  type ConditionValue,
  type ParseConfigOptions,
} from './config.ts'
export { createGateway, type Gateway, type GatewayOptions, type GatewayLogger } from './gateway.ts'
export { NodeExchange } from './exchange.ts'
export { UpstreamRuntime } from './upstream.ts'
