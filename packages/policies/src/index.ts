import type { PolicyDefinition } from '@switchboard/core'
import { corsPolicy } from './cors/index.ts'
import { headersPolicy } from './headers/index.ts'
import { requestIdPolicy } from './request-id/index.ts'
import { rewritePolicy } from './rewrite/index.ts'

export { cors, corsPolicy, parseCorsOptions, DEFAULT_CORS_METHODS, type CorsOptions } from './cors/index.ts'
export { headers, headersPolicy, parseHeadersOptions, type HeadersOptions } from './headers/index.ts'
export { rewrite, rewriteTarget, rewritePolicy, parseRewriteOptions, type RewriteOptions } from './rewrite/index.ts'
export { requestId, requestIdPolicy, REQUEST_ID_STATE, type RequestIdOptions } from './request-id/index.ts'

/**
 * Every built-in policy type, for a registry to start from.
 * @example const names = builtinPolicies.map((p) => p.name) // ['headers', 'rewrite', 'request-id', 'cors', …]
 */
export const builtinPolicies: readonly PolicyDefinition<any>[] = [headersPolicy, rewritePolicy, requestIdPolicy, corsPolicy]
