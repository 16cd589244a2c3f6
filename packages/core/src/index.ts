export {
  GatewayError,
  isGatewayError,
  BadRequestError,
  UnauthorizedError,
  ForbiddenError,
  NoRouteError,
  MethodNotAllowedError,
  RequestTimeoutError,
  PayloadTooLargeError,
  RateLimitedError,
  HeadersTooLargeError,
  BadGatewayError,
  NoHealthyUpstreamError,
  ServiceUnavailableError,
  UpstreamTimeoutError,
  PoolSaturatedError,
  ConfigError,
  type GatewayErrorOptions,
  type GatewayErrorBody,
  type TimeoutPhase,
} from './errors.ts'
export { parseDuration, parseSize } from './units.ts'
export { concatBytes, readTextWithin, untilAborted } from './bounded.ts'
export { TOKEN_USAGE_STATE, estimatePromptTokens, requestedMaxTokens, requestedModel, type TokenUsage } from './llm.ts'
export { canonicalJson, MAX_CANONICAL_DEPTH } from './json.ts'
export { HOP_BY_HOP_FIELDS } from './headers.ts'
export type { Endpoint, EndpointStats, EngineStats, EngineStatsField, EngineUpdate, TrackedEndpoint, HeaderRecord, RequestInfo, Balancer } from './types.ts'
export {
  encodeText,
  decodeText,
  encodeJson,
  decodeJson,
  type Store,
  type StoreSetOptions,
} from './store.ts'
export type {
  Exchange,
  ExchangeRequest,
  MatchedRoute,
  Middleware,
  ResponseTap,
  UpstreamFetchInit,
  UpstreamResponse,
  ExchangeResponseInfo,
} from './exchange.ts'
export { compose, JSON_RESPONSE_HEADERS, respondWithError, toGatewayError, type ComposeOptions, type ErrorHandler, type Terminal } from './pipeline.ts'
export {
  DEFAULT_IDENTITY_HEADERS,
  IDENTITY_STATE,
  SUBJECT_STATE,
  CLIENT_STATE,
  type Identity,
  type AuthResult,
  type Authenticator,
  type IdentityHeaders,
} from './auth.ts'
export { definePolicy, type PolicyDefinition, type PolicyContext, type PolicyPhase } from './policy.ts'
export {
  ConfigValidator,
  OptionReader,
  type ConfigObject,
  type ConditionValue,
  type HeaderEditConfig,
} from './config-validator.ts'
export { parseIp, createIpMatcher } from './ip.ts'
export {
  RATE_LIMIT_ALGORITHMS,
  decideRateLimit,
  stepWindow,
  checkRateLimitRequest,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitAlgorithm,
  type RateLimitWindow,
  type RateLimitWindowResult,
  type WindowStep,
} from './rate-limit.ts'
