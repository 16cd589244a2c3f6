import { ConfigError } from './errors.ts'
import { parseDuration, parseSize } from './units.ts'

/** A plain mapping from YAML/JSON. */
export type ConfigObject = Record<string, unknown>

/** String-or-pattern condition values as they come from YAML (`/regex/flags` strings become RegExp). */
export type ConditionValue = string | RegExp | true

/** Header edits: names to set (lowercase) and names to remove. */
export interface HeaderEditConfig {
  set: Record<string, string>
  remove: string[]
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Config validation helpers: every failure throws a {@link ConfigError} naming the file, the key
 * path and what was expected. `${NAME}` / `${NAME:-default}` in string values expand from `env`.
 * @example
 * const v = new ConfigValidator('gw.yaml', {})
 * const port = v.port(raw.port, 'server.port') ?? 8080
 */
export class ConfigValidator {
  readonly #file: string | undefined
  readonly #env: Record<string, string | undefined>

  constructor(file?: string, env: Record<string, string | undefined> = {}) {
    this.#file = file
    this.#env = env
  }

  /** The file named in errors. */
  get file(): string | undefined {
    return this.#file
  }

  fail(path: string, expected: string, got: unknown): never {
    throw new ConfigError(path, expected, { file: this.#file, got })
  }

  /** Expands `${NAME}` and `${NAME:-default}`; a missing variable without default is an error. */
  expand(value: string, path: string): string {
    if (!value.includes('${')) return value
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback?: string) => {
      const found = this.#env[name]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      return this.fail(path, `environment variable ${name} to be set`, undefined)
    })
  }

  object(value: unknown, path: string): ConfigObject {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, 'a mapping', value)
    return value as ConfigObject
  }

  /**
   * A mapping whose keys are user-chosen names (upstreams, policies): copied into an object without
   * a prototype, so names such as `constructor` or `__proto__` are plain keys, never inherited members.
   */
  map(value: unknown, path: string): ConfigObject {
    const obj = this.object(value, path)
    const out = Object.create(null) as ConfigObject
    for (const key of Object.keys(obj)) out[key] = obj[key]
    return out
  }

  /** A header or token name (RFC 9110 §5.6.2), lowercased. */
  token(value: unknown, path: string): string {
    const s = this.string(value, path)
    if (!TOKEN.test(s)) this.fail(path, 'a valid header name', s)
    return s.toLowerCase()
  }

  list(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'a list', value)
    return value
  }

  keys(obj: ConfigObject, path: string, allowed: string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(path ? `${path}.${key}` : key, `one of the known keys (${allowed.join(', ')})`, key)
      }
    }
  }

  string(value: unknown, path: string): string {
    if (typeof value !== 'string' || value === '') this.fail(path, 'a non-empty string', value)
    return this.expand(value, path)
  }

  optString(value: unknown, path: string): string | undefined {
    return value === undefined ? undefined : this.string(value, path)
  }

  number(value: unknown, path: string, range: { min?: number; max?: number }): number {
    const n = typeof value === 'string' ? Number(this.expand(value, path)) : value
    if (typeof n !== 'number' || !Number.isFinite(n)) this.fail(path, 'a number', value)
    if (range.min !== undefined && n < range.min) this.fail(path, `a number ≥ ${range.min === Number.MIN_VALUE ? '0 (exclusive)' : range.min}`, value)
    if (range.max !== undefined && n > range.max) this.fail(path, `a number ≤ ${range.max}`, value)
    return n
  }

  integer(value: unknown, path: string, min: number): number {
    const n = this.number(value, path, { min })
    if (!Number.isInteger(n)) this.fail(path, `a whole number ≥ ${min}`, value)
    return n
  }

  optInteger(value: unknown, path: string, min: number): number | undefined {
    return value === undefined ? undefined : this.integer(value, path, min)
  }

  port(value: unknown, path: string): number | undefined {
    if (value === undefined) return undefined
    const n = typeof value === 'string' ? Number(this.expand(value, path)) : value
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) this.fail(path, 'a port number (0-65535)', value)
    return n
  }

  duration(value: unknown, path: string, fallback: number, min = 0): number {
    if (value === undefined) return fallback
    const ms = parseDuration(typeof value === 'string' ? this.expand(value, path) : value)
    if (ms === undefined || ms < min) this.fail(path, 'a duration such as 250ms, 2s, 5m or a number of milliseconds', value)
    return ms
  }

  size(value: unknown, path: string, fallback: number, min = 0): number {
    if (value === undefined) return fallback
    const bytes = parseSize(typeof value === 'string' ? this.expand(value, path) : value)
    if (bytes === undefined || bytes < min) this.fail(path, `a size such as 16kb, 10mb or a number of bytes (≥ ${min})`, value)
    return bytes
  }

  httpUrl(value: unknown, path: string): string {
    const s = this.string(value, path)
    let url: URL
    try {
      url = new URL(s)
    } catch {
      return this.fail(path, 'an http:// or https:// URL', s)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') this.fail(path, 'an http:// or https:// URL', s)
    if (url.search || url.hash || url.username || url.password) this.fail(path, 'a URL without query, fragment or credentials', s)
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`
  }

  pathPrefix(value: unknown, path: string): string {
    const s = this.string(value, path)
    if (!s.startsWith('/')) this.fail(path, 'a path prefix starting with /', s)
    return s
  }

  /**
   * Header or query conditions: a string (exact), a `/regex/flags` string, or `true` (present).
   * Header names are case-insensitive and lowercased; query names are kept as written.
   */
  conditions(value: unknown, path: string, options: { lowercase?: boolean } = {}): Record<string, ConditionValue> {
    const obj = this.object(value, path)
    const out = Object.create(null) as Record<string, ConditionValue>
    const lower = options.lowercase ?? true
    for (const [raw, cond] of Object.entries(obj)) {
      const key = lower ? raw.toLowerCase() : raw
      if (cond === true) out[key] = true
      else if (typeof cond === 'string') {
        const re = /^\/(.*)\/([a-z]*)$/s.exec(cond)
        if (re) {
          try {
            out[key] = new RegExp(re[1], re[2])
          } catch {
            this.fail(`${path}.${raw}`, 'a valid /regular expression/', cond)
          }
        } else out[key] = this.expand(cond, `${path}.${raw}`)
      } else this.fail(`${path}.${raw}`, 'a string, a /regex/ or true', cond)
    }
    return out
  }

  headerEdit(value: unknown, path: string): HeaderEditConfig {
    const obj = this.object(value, path)
    this.keys(obj, path, ['set', 'remove'])
    const set = Object.create(null) as Record<string, string>
    if (obj.set !== undefined) {
      for (const [k, val] of Object.entries(this.object(obj.set, `${path}.set`))) {
        if (!TOKEN.test(k)) this.fail(`${path}.set.${k}`, 'a valid header name', k)
        const s = typeof val === 'number' ? String(val) : this.string(val, `${path}.set.${k}`)
        if (/[\r\n\0]/.test(s)) this.fail(`${path}.set.${k}`, 'a header value without CR, LF or NUL', s)
        set[k.toLowerCase()] = s
      }
    }
    const remove =
      obj.remove === undefined
        ? []
        : this.list(obj.remove, `${path}.remove`).map((x, i) => this.string(x, `${path}.remove[${i}]`).toLowerCase())
    return { set, remove }
  }
}

/**
 * Reads one options mapping key by key, for policy and driver option parsers: each getter names
 * `${at}.key` in its error, and {@link done} refuses keys nobody read (typos fail loudly).
 * @example
 * const r = new OptionReader(raw, 'policies.trace')
 * const header = r.token('header', 'x-request-id')
 * r.done()
 */
export class OptionReader {
  readonly raw: ConfigObject
  readonly at: string
  readonly v: ConfigValidator
  readonly #read = new Set<string>()

  constructor(raw: unknown, at: string, validator: ConfigValidator = new ConfigValidator()) {
    this.v = validator
    this.at = at
    this.raw = raw === undefined || raw === null ? {} : validator.object(raw, at)
  }

  /** Key path of `key`. */
  path(key: string): string {
    return this.at ? `${this.at}.${key}` : key
  }

  /** The raw value of `key` (marks it read). */
  get(key: string): unknown {
    this.#read.add(key)
    return Object.hasOwn(this.raw, key) ? this.raw[key] : undefined
  }

  has(key: string): boolean {
    return Object.hasOwn(this.raw, key)
  }

  string(key: string, fallback: string): string
  string(key: string): string | undefined
  string(key: string, fallback?: string): string | undefined {
    const value = this.get(key)
    return value === undefined ? fallback : this.v.string(value, this.path(key))
  }

  token(key: string, fallback: string): string
  token(key: string): string | undefined
  token(key: string, fallback?: string): string | undefined {
    const value = this.get(key)
    return value === undefined ? fallback : this.v.token(value, this.path(key))
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.get(key)
    if (value === undefined) return fallback
    if (typeof value !== 'boolean') this.v.fail(this.path(key), 'true or false', value)
    return value
  }

  number(key: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const value = this.get(key)
    return value === undefined ? fallback : this.v.number(value, this.path(key), range)
  }

  integer(key: string, fallback: number, min = 0): number {
    const value = this.get(key)
    return value === undefined ? fallback : this.v.integer(value, this.path(key), min)
  }

  duration(key: string, fallback: number, min = 0): number {
    return this.v.duration(this.get(key), this.path(key), fallback, min)
  }

  size(key: string, fallback: number, min = 0): number {
    return this.v.size(this.get(key), this.path(key), fallback, min)
  }

  /** A list of strings (a single string is a one-item list). */
  strings(key: string, fallback: string[] = []): string[] {
    const value = this.get(key)
    if (value === undefined) return fallback
    const list = typeof value === 'string' ? [value] : this.v.list(value, this.path(key))
    return list.map((x, i) => this.v.string(x, `${this.path(key)}[${i}]`))
  }

  /** One of `choices`. */
  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.get(key)
    if (value === undefined) return fallback
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) this.v.fail(this.path(key), choices.join(', '), value)
    return value as T
  }

  /** A nested mapping read the same way. */
  child(key: string): OptionReader {
    return new OptionReader(this.get(key), this.path(key), this.v)
  }

  /** Throws for the first key that no getter asked for. */
  done(): void {
    for (const key of Object.keys(this.raw)) {
      if (!this.#read.has(key)) this.v.fail(this.path(key), `one of the known keys (${[...this.#read].join(', ') || 'none'})`, key)
    }
  }
}
