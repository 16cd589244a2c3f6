import { checkRegexSafety } from '@switchboard/matcher'

/**
 * Why `source` is refused as a rewrite pattern, or `undefined` when it is accepted: the matcher's
 * own safety check (catastrophic backtracking, backreferences, over-long sources, syntax errors),
 * so route patterns and rewrite patterns follow one rule.
 * @example rewriteRegexIssue('^/(a+)+$') // 'repeats a group …'
 */
export function rewriteRegexIssue(source: string): string | undefined {
  return checkRegexSafety(source)
}
