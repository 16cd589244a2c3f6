export {
  startPrimary,
  FleetStartError,
  QUICK_DEATH_MS,
  MAX_QUICK_DEATHS,
  type FleetPrimary,
  type FleetWorkerInfo,
  type PrimaryOptions,
  type RollOutcome,
  type FleetRequest,
  type FleetAnswer,
  type WorkerMessage,
  type PrimaryMessage,
} from './primary.ts'
export { isFleetWorker, joinFleet, forwardHeaders, WORKER_ID_ENV, type FleetAdmin, type WorkerLink } from './worker.ts'
export { mergeExpositions, mergeAdminJson, mergeValues, STATE_GAUGES, type WorkerAnswer } from './merge.ts'
