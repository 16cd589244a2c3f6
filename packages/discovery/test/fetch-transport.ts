// The README's example transport, kept here so a test proves it works on every runtime.
import { BadGatewayError, type UpstreamResponse } from '@switchboard/core'
import type { DiscoveryTransport } from '../src/index.ts'

// RFC 9110 §7.6.1: connection-specific fields are not forwarded; fetch sets host and length itself.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
])

/** A DiscoveryTransport on the Web `fetch` (identity encoding, since fetch would decompress). */
export const fetchTransport: DiscoveryTransport = {
  async send(ex, endpointUrl, body): Promise<UpstreamResponse> {
    const headers = new Headers()
    for (const [name, value] of Object.entries(ex.request.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers.set(name, Array.isArray(value) ? value.join(', ') : value)
    }
    headers.set('accept-encoding', 'identity')
    let res: Response
    try {
      res = await fetch(endpointUrl + ex.upstreamTarget, {
        method: ex.request.method,
        headers,
        body: body as BodyInit | undefined,
        redirect: 'manual',
      })
    } catch (cause) {
      throw new BadGatewayError({ cause })
    }
    const stream = res.body
    return {
      status: res.status,
      headers: Object.fromEntries(res.headers),
      body: (stream ?? []) as unknown as AsyncIterable<Uint8Array>, // Web streams are async-iterable on Node 20+, Bun, Deno
      cancel: () => void stream?.cancel().catch(() => {}),
    }
  },
}
