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
