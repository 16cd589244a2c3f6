export {
  createHealthChecker,
  type ActiveHealthCheckOptions,
  type HealthChangeEvent,
  type HealthChangeListener,
  type HealthChecker,
  type HealthCheckerOptions,
  type ObservedOutcome,
  type PassiveHealthCheckOptions,
  type StatusPattern,
} from './health-checker.ts'
export {
  createEngineStatsScraper,
  DEFAULT_ENGINE_STATS_INTERVAL_MS,
  DEFAULT_ENGINE_STATS_MAX_BYTES,
  type EngineScrapeReport,
  type EngineStatsFormat,
  type EngineStatsScraper,
  type EngineStatsScraperOptions,
  type EngineStatsTarget,
} from './engine-stats.ts'
