import type { PolicyDefinition } from '@switchboard/core'
import { apiKeyPolicy } from './api-key/index.ts'
import { basicPolicy } from './basic/index.ts'
import { jwtPolicy } from './jwt/index.ts'

export { authenticate, stripIdentityHeaders, stripCredentials, BUSY_DETAIL, type AuthenticateOptions, type CookieCredentialAuthenticator } from './combine.ts'
export {
  apiKey,
  apiKeyPolicy,
  createApiKeyAuthenticator,
  parseApiKeyOptions,
  hashApiKey,
  DEFAULT_API_KEY_CACHE_SIZE,
  type ApiKeyOptions,
  type ApiKeyEntry,
} from './api-key/index.ts'
export {
  jwt,
  jwtPolicy,
  createJwtAuthenticator,
  parseJwtOptions,
  JWT_ALGORITHMS,
  JWT_DEFAULTS,
  type JwtOptions,
  type JwtAlgorithm,
  type RequiredClaimValue,
} from './jwt/index.ts'
export {
  basic,
  basicPolicy,
  createBasicAuthenticator,
  parseBasicOptions,
  verifyPasswordHash,
  BASIC_DEFAULTS,
  MAX_ARGON2_ITERATIONS,
  MAX_ARGON2_MEMORY_KIB,
  MAX_BCRYPT_COST,
  type BasicOptions,
} from './basic/index.ts'

/**
 * The authentication policy types, for a registry to add to the built-in ones.
 * @example const names = builtinAuthPolicies.map((p) => p.name) // ['api-key', 'jwt', 'basic']
 */
export const builtinAuthPolicies: readonly PolicyDefinition<any>[] = [apiKeyPolicy, jwtPolicy, basicPolicy]
