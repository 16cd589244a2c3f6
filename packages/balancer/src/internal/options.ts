// Internal: option validation shared by the factories. Errors name the option so the gateway can
// prefix the config key path (`upstreams.api.balancer.options.<name>`).
import { parseDuration } from '@switchboard/core'

/** Throws unless `options` is a plain object whose keys are all in `allowed`. */
export function checkOptions(options: unknown, allowed: readonly string[], prefix = ''): Record<string, unknown> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${prefix || 'options'} must be an object`)
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const known = allowed.length === 0 ? 'none' : allowed.join(', ')
      throw new RangeError(`${prefix}${key} is not a known option (known: ${known})`)
    }
  }
  return options as Record<string, unknown>
}

/** A function option, or `fallback` when absent. */
export function optFunction<T extends (...args: never[]) => unknown>(value: unknown, name: string, fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function`)
  return value as T
}

/** A boolean option, or `fallback` when absent. */
export function optBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false`)
  return value
}

/** A non-empty string option, or `fallback` when absent. */
export function optString(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`)
  return value
}

/** An integer option in [min, max], or `fallback` when absent. */
export function optInteger(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}`)
  }
  return value
}

/** A duration (`'1h'`, `'30s'` or milliseconds), or `undefined` when absent. */
export function optDuration(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  if (ms === undefined) throw new RangeError(`${name} must be a duration such as "30m" or a number of milliseconds`)
  return ms
}

/** One of `choices`, or `fallback` when absent. */
export function optEnum<T extends string>(value: unknown, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw new RangeError(`${name} must be one of ${choices.map((c) => `"${c}"`).join(', ')}`)
  }
  return value as T
}
