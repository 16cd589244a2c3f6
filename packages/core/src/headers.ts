/**
 * Fields that describe one connection, never the message (RFC 9110 §7.6.1), plus the proxy's own
 * credentials (`Proxy-Authorization`, `Proxy-Authenticate`, §11.7): a proxy drops them in both
 * directions, together with any field named in `Connection`. Lowercase.
 * @example if (HOP_BY_HOP_FIELDS.includes(name)) continue
 */
export const HOP_BY_HOP_FIELDS: readonly string[] = Object.freeze([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])
