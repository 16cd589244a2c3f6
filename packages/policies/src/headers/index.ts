import { ConfigValidator, definePolicy, type Exchange, type HeaderEditConfig, type HeaderRecord, type Middleware, OptionReader, type PolicyDefinition } from '@switchboard/core'
import { compileHeaderTemplate, hasPlaceholders, type HeaderTemplate, isSafeHeaderValue } from './template.ts'

export { compileHeaderTemplate, HEADER_PLACEHOLDERS, isSafeHeaderValue, type HeaderTemplate } from './template.ts'

/**
 * Edits of one direction, applied in this order: `remove`, `rename`, `set`, `add`. Values of `set`
 * and `add` may use placeholders such as `{client.ip}` or `{request.header.x-foo}` (see
 * {@link HEADER_PLACEHOLDERS}); `{{` and `}}` are literal braces.
 */
export interface HeaderEdits extends Partial<HeaderEditConfig> {
  /** Replaces the field (a value that expands to `''` or to something unsafe removes it instead). @default none */
  set?: Record<string, string>
  /** Removes these fields. @default none */
  remove?: string[]
  /** Appends a value, keeping what is there (`, `-joined towards the upstream, one more field line towards the client). @default none */
  add?: Record<string, string | string[]>
  /** Moves a field to a new name, `{ from: to }`; nothing happens when `from` is absent. @default none */
  rename?: Record<string, string>
}

/** Options of {@link headers}. */
export interface HeadersOptions {
  /** Edits of the request sent upstream. @default none */
  request?: HeaderEdits
  /** Edits of the response sent to the client, error responses included. @default none */
  response?: HeaderEdits
}

/**
 * Sets, appends, renames and removes request headers (towards the upstream) and response headers
 * (towards the client). Response edits apply to every answer that passes this layer: upstream
 * responses and the gateway's own errors (401, 404, 502 …) alike. Names are case-insensitive.
 * Request-time placeholders are expanded per request; an expanded value containing CR, LF, NUL or
 * another control character is dropped, never sent. Throws a `RangeError` for an unknown placeholder.
 * @example
 * const layer = headers({
 *   request: { set: { 'x-client-ip': '{client.ip}' }, add: { via: 'sb' }, rename: { 'x-old': 'x-new' }, remove: ['cookie'] },
 *   response: { remove: ['server'], add: { 'cache-control': 'no-transform' } },
 * })
 */
export function headers(options: HeadersOptions = {}): Middleware {
  const req = compileEdits(options.request ?? {}, 'request')
  const res = compileEdits(options.response ?? {}, 'response')
  const upstream = Object.create(null) as Record<string, string | undefined>
  // The common case (constant set/remove only) stays one Object.assign per request.
  const constantOnly = req.rename.length === 0 && req.add.length === 0 && req.set.every((s) => !s.dynamic)
  if (constantOnly) {
    for (const name of req.remove) upstream[name] = undefined
    for (const s of req.set) {
      const value = s.value(undefined as unknown as Exchange)
      upstream[s.name] = value !== '' && isSafeHeaderValue(value) ? value : undefined
    }
  }
  const hasUpstream = !req.empty
  const editResponse = !res.empty
  return async function headersPolicy(ex, next) {
    if (hasUpstream) {
      if (constantOnly) Object.assign(ex.upstreamHeaders, upstream)
      else editUpstream(ex, req)
    }
    // Evaluated when the head is written, so `{route.*}` and `{request.id}` are known by then.
    if (editResponse) ex.onResponseHead((_status, out) => editHead(ex, res, out))
    await next()
  }
}

/** Parses `{ request: { set, add, remove, rename }, response: { … } }` (key paths in errors). */
export function parseHeadersOptions(raw: Record<string, unknown>, at: string, validator: ConfigValidator = new ConfigValidator()): HeadersOptions {
  const r = new OptionReader(raw, at, validator)
  const request = r.get('request')
  const response = r.get('response')
  r.done()
  return {
    request: request === undefined ? undefined : parseEdits(request, r.path('request'), validator),
    response: response === undefined ? undefined : parseEdits(response, r.path('response'), validator),
  }
}

/**
 * The `headers` policy type: `{ use: headers, request: { set: {NAME: VALUE}, add, rename: {FROM: TO}, remove: [NAME] }, response: { … } }`.
 * @example registry.policies.set(headersPolicy.name, headersPolicy)
 */
export const headersPolicy: PolicyDefinition<HeadersOptions> = definePolicy({
  name: 'headers',
  parse: (raw, at) => parseHeadersOptions(raw, at),
  create: (options) => headers(options),
})

// ---- internals ----------------------------------------------------------------------------

interface CompiledEdits {
  readonly empty: boolean
  readonly remove: string[]
  readonly rename: Array<readonly [string, string]>
  readonly set: Array<{ name: string; value: HeaderTemplate; dynamic: boolean }>
  readonly add: Array<{ name: string; values: HeaderTemplate[] }>
}

// Editing message framing from config invites request smuggling; the transport owns these.
const FRAMING = new Set(['content-length', 'transfer-encoding'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function compileEdits(edits: HeaderEdits, side: string): CompiledEdits {
  const name = (n: string, where: string): string => {
    if (!TOKEN.test(n)) throw new RangeError(`headers: ${side}.${where} "${n}" is not a valid header name`)
    const lower = n.toLowerCase()
    if (FRAMING.has(lower)) throw new RangeError(`headers: ${side}.${where} may not edit ${lower} (message framing)`)
    return lower
  }
  const template = (value: string, where: string): HeaderTemplate => {
    try {
      return compileHeaderTemplate(value)
    } catch (error) {
      throw new RangeError(`headers: ${side}.${where}: ${(error as Error).message}`)
    }
  }
  const remove = (edits.remove ?? []).map((n) => name(n, 'remove'))
  const rename = Object.entries(edits.rename ?? {}).map(([from, to]) => [name(from, `rename.${from}`), name(to, `rename.${from}`)] as const)
  const set = Object.entries(edits.set ?? {}).map(([n, v]) => ({ name: name(n, `set.${n}`), value: template(String(v), `set.${n}`), dynamic: hasPlaceholders(String(v)) }))
  const add = Object.entries(edits.add ?? {}).map(([n, v]) => ({
    name: name(n, `add.${n}`),
    values: (Array.isArray(v) ? v : [v]).map((x) => template(String(x), `add.${n}`)),
  }))
  return { empty: remove.length + rename.length + set.length + add.length === 0, remove, rename, set, add }
}

function joined(value: string | string[] | undefined, name: string): string | undefined {
  if (value === undefined || !Array.isArray(value)) return value
  return value.join(name === 'cookie' ? '; ' : ', ')
}

/** Towards the upstream: `upstreamHeaders` overrides what the client sent (a string sets, `undefined` removes). */
function editUpstream(ex: Exchange, e: CompiledEdits): void {
  const out = ex.upstreamHeaders
  const current = (name: string): string | undefined => (Object.hasOwn(out, name) ? out[name] : joined(ex.request.headers[name], name))
  for (const name of e.remove) out[name] = undefined
  for (const [from, to] of e.rename) {
    const value = current(from)
    if (value === undefined || from === to) continue
    out[to] = value
    out[from] = undefined
  }
  for (const s of e.set) {
    const value = s.value(ex)
    // A dropped value removes the field, so a client-sent copy never passes as the gateway's.
    out[s.name] = value !== '' && isSafeHeaderValue(value) ? value : undefined
  }
  for (const a of e.add) {
    for (const tpl of a.values) {
      const value = tpl(ex)
      if (value === '' || !isSafeHeaderValue(value)) continue
      const cur = current(a.name)
      out[a.name] = cur === undefined || cur === '' ? value : `${cur}${a.name === 'cookie' ? '; ' : ', '}${value}`
    }
  }
}

/** Towards the client, on the head about to be written (upstream response or gateway error). */
function editHead(ex: Exchange, e: CompiledEdits, out: HeaderRecord): void {
  for (const name of e.remove) delete out[name]
  for (const [from, to] of e.rename) {
    const value = out[from]
    if (value === undefined || from === to) continue
    out[to] = value
    delete out[from]
  }
  for (const s of e.set) {
    const value = s.value(ex)
    if (value !== '' && isSafeHeaderValue(value)) out[s.name] = value
    else delete out[s.name]
  }
  for (const a of e.add) {
    for (const tpl of a.values) {
      const value = tpl(ex)
      if (value === '' || !isSafeHeaderValue(value)) continue
      const cur = out[a.name]
      out[a.name] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value]
    }
  }
}

function parseEdits(value: unknown, path: string, v: ConfigValidator): HeaderEdits {
  const obj = v.object(value, path)
  v.keys(obj, path, ['set', 'remove', 'add', 'rename'])
  const base = v.headerEdit({ set: obj.set, remove: obj.remove }, path)
  const check = (n: string, where: string): void => {
    if (FRAMING.has(n.toLowerCase())) v.fail(where, 'a header other than content-length or transfer-encoding (message framing)', n)
  }
  for (const n of base.remove) check(n, `${path}.remove`)
  for (const [n, val] of Object.entries(base.set)) {
    check(n, `${path}.set.${n}`)
    templateOk(val, `${path}.set.${n}`, v)
  }
  const out: HeaderEdits = { set: base.set, remove: base.remove }
  if (obj.add !== undefined) {
    const add = Object.create(null) as Record<string, string | string[]>
    for (const [k, raw] of Object.entries(v.object(obj.add, `${path}.add`))) {
      const where = `${path}.add.${k}`
      if (!TOKEN.test(k)) v.fail(where, 'a valid header name', k)
      check(k, where)
      const list = Array.isArray(raw) ? raw : [raw]
      const values = list.map((x, i) => {
        const at = Array.isArray(raw) ? `${where}[${i}]` : where
        const s = typeof x === 'number' ? String(x) : v.string(x, at)
        if (/[\r\n\0]/.test(s)) v.fail(at, 'a header value without CR, LF or NUL', s)
        templateOk(s, at, v)
        return s
      })
      add[k.toLowerCase()] = Array.isArray(raw) ? values : values[0]
    }
    out.add = add
  }
  if (obj.rename !== undefined) {
    const rename = Object.create(null) as Record<string, string>
    for (const [from, to] of Object.entries(v.object(obj.rename, `${path}.rename`))) {
      const where = `${path}.rename.${from}`
      if (!TOKEN.test(from)) v.fail(where, 'a valid header name', from)
      const target = v.token(to, where)
      check(from, where)
      check(target, where)
      if (target === from.toLowerCase()) v.fail(where, 'a different header name', to)
      rename[from.toLowerCase()] = target
    }
    out.rename = rename
  }
  return out
}

function templateOk(value: string, path: string, v: ConfigValidator): void {
  try {
    compileHeaderTemplate(value)
  } catch (error) {
    v.fail(path, `a value whose placeholders are known (${(error as Error).message})`, value)
  }
}
