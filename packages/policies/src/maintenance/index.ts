import {
  ConfigValidator,
  createIpMatcher,
  definePolicy,
  GatewayError,
  type GatewayErrorOptions,
  type Middleware,
  OptionReader,
  type PolicyDefinition,
} from '@switchboard/core'

const DEFAULT_MESSAGE = 'The service is down for maintenance'
const ENCODER = new TextEncoder()

/** Who still gets through while maintenance is on. */
export interface MaintenanceBypass {
  /** Clients in these addresses or CIDR ranges (IPv4 or IPv6) pass. @default [] */
  ips?: readonly string[]
  /**
   * A request carrying one of these headers with exactly this value passes (compared in constant
   * time). The header is removed from the request sent upstream, so the secret never leaves the
   * gateway. Names are case-insensitive.
   * @default {}
   */
  headers?: Readonly<Record<string, string>>
}

/** Options of {@link maintenance}. */
export interface MaintenanceOptions {
  /** Whether the layer answers with maintenance; an admin call through the switch may override it. @default true */
  enabled?: boolean
  /** Status of the answer, 500–599. @default 503 */
  status?: number
  /** `error.message` of the JSON body. @default 'The service is down for maintenance' */
  message?: string
  /** A body sent verbatim instead of the JSON one (a maintenance page). @default none: the JSON body */
  body?: string
  /** Content type of `body`. @default 'text/plain; charset=utf-8' */
  contentType?: string
  /** Sent as `Retry-After` in whole seconds, rounded up (config: `retryAfter: 2m` → `120`). @default none: no header */
  retryAfterMs?: number
  /** Clients that still get through. @default nobody */
  bypass?: MaintenanceBypass
  /** The name this layer answers to in `switch` (the gateway passes the policy instance name). @default 'maintenance' */
  name?: string
  /** Where the layer's on/off state lives, for runtime switching. @default {@link maintenanceSwitch} */
  switch?: MaintenanceSwitch
}

/** One maintenance layer's state, as {@link MaintenanceSwitch.list} reports it. */
export interface MaintenanceStatus {
  /** Instance name (`policies.NAME`). */
  readonly name: string
  /** Whether it answers with maintenance now: `override` when set, else `configured`. */
  readonly enabled: boolean
  /** `enabled` as the config (or the factory options) last said. */
  readonly configured: boolean
  /** What a runtime call set, until it is cleared or the configured value changes. */
  readonly override: boolean | undefined
}

/**
 * The on/off state of maintenance layers, by instance name, shared by every layer created with
 * that name (all routes that list it, old and new config during a reload). Config sets each
 * layer's `configured` value when the layer is created; {@link set} overrides it at run time (an
 * admin endpoint). An override lasts until it is cleared with `set(undefined)` or until a reload
 * changes that instance's configured `enabled`, whichever comes first: the newest intent wins, and
 * a reload that leaves `enabled` alone keeps the override.
 * @example
 * const sw = new MaintenanceSwitch()
 * const layer = maintenance({ enabled: false, name: 'closed', switch: sw })
 * sw.set(true, 'closed') // ['closed']: the layer now answers 503
 */
export class MaintenanceSwitch {
  readonly #entries = new Map<string, { configured: boolean; override: boolean | undefined }>()

  /** Records a layer's configured state; called by {@link maintenance} each time a layer is created. */
  register(name: string, configured: boolean): void {
    const entry = this.#entries.get(name)
    if (!entry) this.#entries.set(name, { configured, override: undefined })
    else if (entry.configured !== configured) {
      entry.configured = configured
      entry.override = undefined
    }
  }

  /** Whether the layers named `name` answer with maintenance now (false for an unknown name). */
  isEnabled(name: string): boolean {
    const entry = this.#entries.get(name)
    return entry !== undefined && (entry.override ?? entry.configured)
  }

  /**
   * Switches one instance (`name`) or every known instance on (`true`) or off (`false`);
   * `undefined` hands it back to config. Returns the names it applied to: `[]` when `name` is
   * unknown (answer 404) or no maintenance layer exists.
   */
  set(enabled: boolean | undefined, name?: string): string[] {
    const names = name === undefined ? [...this.#entries.keys()] : this.#entries.has(name) ? [name] : []
    for (const n of names) this.#entries.get(n)!.override = enabled
    return names
  }

  /** The state of one instance, or undefined when no layer of that name was created. */
  get(name: string): MaintenanceStatus | undefined {
    const entry = this.#entries.get(name)
    return entry && { name, enabled: entry.override ?? entry.configured, configured: entry.configured, override: entry.override }
  }

  /** Every known instance, in creation order. */
  list(): MaintenanceStatus[] {
    return [...this.#entries.keys()].map((name) => this.get(name)!)
  }

  /** Forgets instances not in `names` (after a reload removed them). */
  retain(names: Iterable<string>): void {
    const keep = new Set(names)
    for (const name of [...this.#entries.keys()]) if (!keep.has(name)) this.#entries.delete(name)
  }
}

/**
 * The process-wide switch used by {@link maintenancePolicy} and by {@link maintenance} without a
 * `switch` option. Use {@link createMaintenancePolicy} for a switch of your own (one per gateway).
 * @example maintenanceSwitch.set(true) // every maintenance layer now answers 503
 */
export const maintenanceSwitch: MaintenanceSwitch = new MaintenanceSwitch()

/** The maintenance answer: `status` (503 by default), code `ERR_MAINTENANCE`. */
export class MaintenanceError extends GatewayError {
  constructor(status = 503, options: GatewayErrorOptions = {}) {
    super(status, 'ERR_MAINTENANCE', DEFAULT_MESSAGE, options)
  }
}

/**
 * Answers every request with 503 `ERR_MAINTENANCE` (or `status`, or a `body` page) while on,
 * with `Retry-After` when `retryAfterMs` is set; bypassing clients (by address or secret header)
 * and everything while off go on to the next layer. On/off is read per request from `switch`, so a
 * runtime call takes effect on the next request.
 * @example
 * const closed = maintenance({ retryAfterMs: 120_000, bypass: { ips: ['10.0.0.0/8'], headers: { 'x-maintenance-key': 's3cret' } } })
 */
export function maintenance(options: MaintenanceOptions = {}): Middleware {
  const name = options.name ?? 'maintenance'
  const sw = options.switch ?? maintenanceSwitch
  const status = options.status ?? 503
  if (!Number.isInteger(status) || status < 500 || status > 599) throw new RangeError('maintenance.status must be a whole number 500-599')
  const retryAfterMs = options.retryAfterMs
  if (retryAfterMs !== undefined && !(Number.isFinite(retryAfterMs) && retryAfterMs >= 0)) throw new RangeError('maintenance.retryAfterMs must be a number ≥ 0')
  const retryAfter = retryAfterMs === undefined ? undefined : String(Math.ceil(retryAfterMs / 1000))
  const message = options.message ?? DEFAULT_MESSAGE
  const page = options.body
  const contentType = options.contentType ?? 'text/plain; charset=utf-8'
  const ips = options.bypass?.ips ?? []
  const bypassIp = ips.length === 0 ? undefined : createIpMatcher(ips)
  const secrets = Object.entries(options.bypass?.headers ?? {}).map(([header, value]) => {
    if (value === '') throw new RangeError(`maintenance.bypass.headers.${header} must not be empty`)
    return [header.toLowerCase(), ENCODER.encode(value)] as const
  })
  sw.register(name, options.enabled ?? true)

  return async function maintenancePolicy(ex, next) {
    let passes = false
    for (const [header, secret] of secrets) {
      const given = ex.request.headers[header]
      if (typeof given === 'string' && safeEqual(given, secret)) passes = true
      ex.upstreamHeaders[header] = undefined
    }
    if (passes || !sw.isEnabled(name) || bypassIp?.(ex.request.clientIp)) return next()
    if (retryAfter !== undefined) ex.responseHeaders['retry-after'] = retryAfter
    if (page === undefined) throw new MaintenanceError(status, { message })
    await ex.respond(status, { 'content-type': contentType, 'cache-control': 'no-store' }, page)
  }
}

/**
 * Parses `{ enabled, status, message | body, contentType, retryAfter, bypass: { ips, headers } }`
 * (key paths in errors; `retryAfter` is a duration such as `2m`).
 * @example parseMaintenanceOptions({ retryAfter: '2m' }, 'policies.closed') // { retryAfterMs: 120000, … }
 */
export function parseMaintenanceOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): MaintenanceOptions {
  const r = new OptionReader(raw, at, validator)
  const enabled = r.boolean('enabled', true)
  const status = r.integer('status', 503, 500)
  if (status > 599) validator.fail(r.path('status'), 'a 5xx status (500-599)', status)
  const message = r.string('message')
  const body = r.string('body')
  if (message !== undefined && body !== undefined) validator.fail(r.path('body'), 'either body or message, not both', body)
  const contentType = r.string('contentType')
  if (contentType !== undefined && /[\r\n\0]/.test(contentType)) validator.fail(r.path('contentType'), 'a header value without CR, LF or NUL', contentType)
  const retryAfterMs = r.has('retryAfter') ? r.duration('retryAfter', 0) : undefined
  const b = r.child('bypass')
  const ips = b.strings('ips').map((s, i) => {
    try {
      createIpMatcher([s])
    } catch {
      validator.fail(`${b.path('ips')}[${i}]`, 'an IP address or CIDR range such as 10.0.0.0/8 or ::1/128', s)
    }
    return s
  })
  const headers = Object.create(null) as Record<string, string>
  const rawHeaders = b.get('headers')
  if (rawHeaders !== undefined) {
    const obj = validator.object(rawHeaders, b.path('headers'))
    for (const key of Object.keys(obj)) {
      const name = validator.token(key, `${b.path('headers')}.${key}`)
      headers[name] = validator.string(obj[key], `${b.path('headers')}.${key}`)
    }
  }
  b.done()
  r.done()
  return { enabled, status, message, body, contentType, retryAfterMs, bypass: { ips, headers } }
}

/**
 * A `maintenance` policy type whose layers live in `sw`: give each gateway its own switch and
 * register this definition in its registry, then call `sw.set(on, name?)` from its admin API.
 * @example
 * const sw = new MaintenanceSwitch()
 * registry.registerPolicy(createMaintenancePolicy(sw))
 */
export function createMaintenancePolicy(sw: MaintenanceSwitch): PolicyDefinition<MaintenanceOptions> {
  return definePolicy({
    name: 'maintenance',
    parse: (raw, at) => parseMaintenanceOptions(raw, at),
    create: (options, ctx) => maintenance({ ...options, name: ctx.name, switch: sw }),
  })
}

/**
 * The `maintenance` policy type on the process-wide {@link maintenanceSwitch}:
 * `{ use: maintenance, enabled: true, retryAfter: 2m, bypass: { ips: [10.0.0.0/8], headers: { x-maintenance-key: "${KEY}" } } }`.
 * @example registry.registerPolicy(maintenancePolicy)
 */
export const maintenancePolicy: PolicyDefinition<MaintenanceOptions> = createMaintenancePolicy(maintenanceSwitch)

/** Compares in time that depends only on the secret's length, so response timing does not leak how much of a guess was right. */
function safeEqual(given: string, secret: Uint8Array): boolean {
  const bytes = ENCODER.encode(given)
  let diff = bytes.length ^ secret.length
  for (let i = 0; i < secret.length; i++) diff |= (bytes[i] ?? 0) ^ secret[i]
  return diff === 0
}
