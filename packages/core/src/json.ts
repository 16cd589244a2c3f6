/** How deep {@link canonicalJson} follows nested arrays and objects by default. */
export const MAX_CANONICAL_DEPTH = 64

/**
 * Canonical JSON text of `value`: object keys sorted by UTF-16 code units, `undefined` members
 * dropped (as JSON does), no whitespace. Two JSON values are equal, whatever their key order, exactly
 * when their canonical texts are. `undefined` when the value is not plain JSON (a class instance, a
 * non-finite number, a function) or nests deeper than `maxDepth`, so it equals nothing.
 * Used for payload-matching routes and for remembered-route keys.
 * @example canonicalJson({ b: [2, 1], a: null }) // '{"a":null,"b":[2,1]}'
 */
export function canonicalJson(value: unknown, maxDepth: number = MAX_CANONICAL_DEPTH): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined
    case 'object': {
      if (value === null) return 'null'
      if (maxDepth <= 0) return undefined
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) {
          const item = canonicalJson(value[i], maxDepth - 1)
          if (item === undefined) return undefined
          out += (i === 0 ? '' : ',') + item
        }
        return `${out}]`
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return undefined
      let out = '{'
      let first = true
      for (const key of Object.keys(value).sort()) {
        const member = (value as Record<string, unknown>)[key]
        if (member === undefined) continue
        const item = canonicalJson(member, maxDepth - 1)
        if (item === undefined) return undefined
        out += `${first ? '' : ','}${JSON.stringify(key)}:${item}`
        first = false
      }
      return `${out}}`
    }
    default:
      return undefined
  }
}
