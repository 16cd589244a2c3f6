// The pure rate-limit algorithms live in core, so the memory store and this policy share one copy.
export {
  RATE_LIMIT_ALGORITHMS,
  decideRateLimit,
  stepWindow,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitAlgorithm,
  type RateLimitWindow,
  type RateLimitWindowResult,
  type WindowStep,
} from '@switchboard/core'
