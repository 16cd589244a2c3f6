/**
 * Fields that describe one connection, never the message (RFC 9110 §7.6.1), plus the proxy's own
 * credentials (`Proxy-Authorization`, `Proxy-Authenticate`, §11.7): a proxy drops them in both
 * directions, together with any field named in `Connection`. Lowercase.
 * @example for (const field of HOP_BY_HOP_FIELDS) delete upstreamHeaders[field]
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
