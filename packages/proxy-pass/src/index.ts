export {
  createUpstreamPool,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_CONNECTIONS,
  type UpstreamPool,
  type UpstreamPoolOptions,
} from './upstream-pool.ts'
export {
  forward,
  DEFAULT_VIA,
  DEFAULT_RESPONSE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  SMALL_BODY_BYTES,
  type ForwardOptions,
  type ForwardResult,
} from './forward.ts'
export { mapUpstreamError } from './errors.ts'
export { proxyPass, type ProxyPassOptions } from './proxy-pass.ts'
export { proxyFetch, type ProxyFetchOptions } from './proxy-fetch.ts'
export { closeSharedPools, MAX_SHARED_POOLS } from './pools.ts'
export { requestUpstream, type RequestUpstreamOptions } from './request-upstream.ts'
