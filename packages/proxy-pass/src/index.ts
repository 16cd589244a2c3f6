export {
  createUpstreamPool,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_CONNECTIONS,
  DEFAULT_QUEUE_TIMEOUT_MS,
  type UpstreamPool,
  type UpstreamPoolOptions,
  type UpstreamPoolStats,
} from './upstream-pool.ts'
export {
  forward,
  DEFAULT_VIA,
  DEFAULT_RESPONSE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_SEND_TIMEOUT_MS,
  DEFAULT_MAX_INFORMATIONAL,
  DEFAULT_MAX_CHUNKS_PER_TURN,
  COALESCE_BYTES,
  SMALL_BODY_BYTES,
  RETRYABLE_STATUS_CODE,
  type ForwardAbortReason,
  type ForwardOptions,
  type ForwardResult,
} from './forward.ts'
export { mapUpstreamError, PoolSaturatedError } from './errors.ts'
export { proxyPass, type ProxyPassOptions } from './proxy-pass.ts'
export { proxyFetch, type ProxyFetchOptions } from './proxy-fetch.ts'
export { closeSharedPools, MAX_SHARED_POOLS } from './pools.ts'
export { requestUpstream, type RequestUpstreamOptions } from './request-upstream.ts'
export {
  cleanResponseHeaders,
  isTrusted,
  lowerOverrides,
  upstreamHeaders,
  type ForwardingInfo,
} from './headers.ts'
