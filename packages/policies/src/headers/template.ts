import type { Exchange } from '@switchboard/core'
import { REQUEST_ID_STATE } from '../request-id/index.ts'

/** A header value with request-time placeholders, compiled once at config time. */
export type HeaderTemplate = (ex: Exchange) => string

/**
 * Placeholders a header value may use. `{{` and `}}` stand for literal braces; anything else in
 * braces is refused when the value is compiled.
 * @example HEADER_PLACEHOLDERS.includes('client.ip') // true
 */
export const HEADER_PLACEHOLDERS: readonly string[] = [
  'client.ip',
  'request.id',
  'request.method',
  'request.path',
  'request.host',
  'request.protocol',
  'request.header.NAME',
  'request.query.NAME',
  'route.name',
  'route.params.NAME',
]

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const PARAM = /^[A-Za-z0-9_*-]+$/

// RFC 9110 §5.5: field values are visible ASCII, space, tab and obs-text; CR, LF, NUL and other
// controls (and anything above U+00FF, which Node refuses) are never written.
const SAFE_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * True when `value` may be sent as a header field value (no CR, LF, NUL or other control).
 * @example isSafeHeaderValue('a\r\nb') // false
 */
export function isSafeHeaderValue(value: string): boolean {
  return SAFE_VALUE.test(value)
}

/**
 * Compiles `value` into a function of the exchange. Throws a `RangeError` naming the first unknown
 * placeholder or stray brace. Values without placeholders compile to a constant.
 * @example compileHeaderTemplate('{client.ip} via {route.name}')(ex) // '10.0.0.1 via users'
 */
export function compileHeaderTemplate(value: string): HeaderTemplate {
  const parts: Array<string | HeaderTemplate> = []
  let text = ''
  let i = 0
  while (i < value.length) {
    const c = value[i]
    if ((c === '{' || c === '}') && value[i + 1] === c) {
      text += c
      i += 2
      continue
    }
    if (c === '}') throw new RangeError(`stray "}" at ${i}; write "}}" for a literal brace`)
    if (c !== '{') {
      text += c
      i++
      continue
    }
    const end = value.indexOf('}', i)
    if (end === -1) throw new RangeError(`unclosed "{" at ${i}; write "{{" for a literal brace`)
    const name = value.slice(i + 1, end)
    if (text) parts.push(text)
    text = ''
    parts.push(placeholder(name))
    i = end + 1
  }
  if (text) parts.push(text)
  if (parts.length === 0) return () => ''
  if (parts.length === 1 && typeof parts[0] === 'string') {
    const constant = parts[0]
    return () => constant
  }
  return (ex) => {
    let out = ''
    for (const p of parts) out += typeof p === 'string' ? p : p(ex)
    return out
  }
}

/** True when `value` uses at least one placeholder (so it must be evaluated per request). */
export function hasPlaceholders(value: string): boolean {
  return value.replaceAll('{{', '').includes('{')
}

function placeholder(name: string): HeaderTemplate {
  switch (name) {
    case 'client.ip':
      return (ex) => ex.request.clientIp
    case 'request.id':
      return (ex) => {
        const id = ex.state.get(REQUEST_ID_STATE)
        return typeof id === 'string' ? id : ''
      }
    case 'request.method':
      return (ex) => ex.request.method
    case 'request.path':
      return (ex) => ex.request.path
    case 'request.host':
      return (ex) => ex.request.host
    case 'request.protocol':
      return (ex) => ex.request.protocol
    case 'route.name':
      return (ex) => ex.route?.name ?? ''
  }
  if (name.startsWith('request.header.')) {
    const header = name.slice('request.header.'.length)
    if (!TOKEN.test(header)) throw new RangeError(`{${name}}: "${header}" is not a valid header name`)
    const lower = header.toLowerCase()
    return (ex) => {
      const v = ex.request.headers[lower]
      return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v
    }
  }
  if (name.startsWith('request.query.')) {
    const key = name.slice('request.query.'.length)
    if (!key) throw new RangeError(`{${name}}: a query parameter name is required`)
    return (ex) => (ex.request.query ? (new URLSearchParams(ex.request.query).get(key) ?? '') : '')
  }
  if (name.startsWith('route.params.')) {
    const param = name.slice('route.params.'.length)
    if (!PARAM.test(param)) throw new RangeError(`{${name}}: "${param}" is not a valid route parameter name`)
    return (ex) => ex.route?.params[param] ?? ''
  }
  throw new RangeError(`unknown placeholder {${name}}; known: ${HEADER_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`)
}
