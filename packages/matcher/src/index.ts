export { createMatcher } from './matcher.ts'
export { normalizePath } from './normalize-path.ts'
export type { Matcher, MatcherOptions, MatchInput, MatchResult, RouteDefinition, RouteMatch } from './types.ts'
