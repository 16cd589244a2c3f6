import type { PolicyDefinition } from '@switchboard/core'
import { corsPolicy } from './cors/index.ts'
import { headersPolicy } from './headers/index.ts'
import { ipFilterPolicy } from './ip-filter/index.ts'
import { maintenancePolicy } from './maintenance/index.ts'
import { rateLimitPolicy } from './rate-limit/index.ts'
import { tokenBudgetPolicy } from './token-budget/index.ts'
import { requestIdPolicy } from './request-id/index.ts'
import { rewritePolicy } from './rewrite/index.ts'
import { securityHeadersPolicy } from './security-headers/index.ts'
import { jsonEnvelopePolicy } from './json-envelope/index.ts'
import { bodyLimitPolicy } from './body-limit/index.ts'

export { cors, corsPolicy, parseCorsOptions, DEFAULT_CORS_METHODS, type CorsOptions } from './cors/index.ts'
export { headers, headersPolicy, parseHeadersOptions, compileHeaderTemplate, HEADER_PLACEHOLDERS, isSafeHeaderValue, type HeadersOptions, type HeaderEdits, type HeaderTemplate } from './headers/index.ts'
export { rewrite, rewriteTarget, rewritePolicy, parseRewriteOptions, rewriteRegexIssue, type RewriteOptions } from './rewrite/index.ts'
export { securityHeaders, securityHeaderFields, securityHeadersPolicy, parseSecurityHeadersOptions, type SecurityHeadersOptions, type HstsOptions, type ReferrerPolicyValue } from './security-headers/index.ts'
export { jsonEnvelope, jsonEnvelopePolicy, DEFAULT_ENVELOPE_MAX_BYTES, type JsonEnvelopeOptions, type JsonEnvelope } from './json-envelope/index.ts'
export { bodyLimit, bodyLimitPolicy, BODY_LIMIT_STATE, type BodyLimitOptions } from './body-limit/index.ts'
export {
  rateLimit,
  rateLimitPolicy,
  parseRateLimitOptions,
  parseRate,
  decideRateLimit,
  stepWindow,
  rateLimitWithCompareAndSet,
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_SUBJECT_STATE,
  RATE_LIMIT_CLIENT_STATE,
  MAX_LOG_LIMIT,
  FAIL_OPEN_LOG_INTERVAL_MS,
  type RateLimitOptions,
  type RateLimitKey,
  type MissingKeyBehaviour,
  type RateLimitAlgorithm,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitWindow,
  type RateLimitWindowResult,
  type WindowStep,
} from './rate-limit/index.ts'
export {
  tokenBudget,
  tokenBudgetPolicy,
  parseTokenBudgetOptions,
  parsePeriod,
  TokenBudgetExceededError,
  MAX_BUDGET_PERIOD_MS,
  DEFAULT_BUDGET_BODY_BYTES,
  type TokenBudgetOptions,
  type TokenBudgetLimit,
  type TokenBudgetKind,
  type TokenPrice,
  type SpendBudget,
} from './token-budget/index.ts'
export { ipFilter, ipFilterPolicy, parseIpFilterOptions, type IpFilterOptions } from './ip-filter/index.ts'
export {
  maintenance,
  maintenancePolicy,
  createMaintenancePolicy,
  parseMaintenanceOptions,
  MaintenanceSwitch,
  maintenanceSwitch,
  MaintenanceError,
  type MaintenanceOptions,
  type MaintenanceBypass,
  type MaintenanceStatus,
} from './maintenance/index.ts'
export { requestId, requestIdPolicy, REQUEST_ID_STATE, type RequestIdOptions } from './request-id/index.ts'

/**
 * Every built-in policy type, for a registry to start from.
 * @example const names = builtinPolicies.map((p) => p.name) // ['headers', 'rewrite', 'request-id', 'cors', …]
 */
export const builtinPolicies: readonly PolicyDefinition<any>[] = [
  headersPolicy,
  rewritePolicy,
  requestIdPolicy,
  corsPolicy,
  securityHeadersPolicy,
  jsonEnvelopePolicy,
  bodyLimitPolicy,
  ipFilterPolicy,
  maintenancePolicy,
  rateLimitPolicy,
  tokenBudgetPolicy,
]
