import { createPrivateKey, X509Certificate } from 'node:crypto'
import type { IncomingMessage, RequestListener, Server, ServerOptions as HttpServerOptions, ServerResponse } from 'node:http'
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls'
import type { ListenerTlsConfig, TlsCertificateConfig, UpstreamTlsConfig } from '../config/types.ts'

/**
 * HTTPS on the listener: the server (a `node:https` one with the same HTTP options), its SNI
 * contexts and a way to swap in renewed certificates without dropping connections.
 * @example
 * const tls = createTlsServer(config.server.tls, { headersTimeout: 10_000 }, handler, 10_000)
 * tls.reload(next.server.tls) // new handshakes get the new certificates
 */
export interface TlsListener {
  /** The `node:https` server (typed as `node:http`'s: the HTTP side is the same). */
  readonly server: Server
  /** The certificates in force. */
  readonly config: ListenerTlsConfig
  /** Handshakes that failed or timed out since start (counted, never logged one by one). */
  readonly clientErrors: number
  /**
   * Builds the secure contexts of `next` and returns the step that puts them in force; throws (naming
   * `server.tls[i]`) when a certificate and key do not fit or `next` needs a restart. Nothing changes
   * until the returned function runs, so a reload refused later leaves the old certificates serving.
   */
  prepare(next: ListenerTlsConfig): () => void
  /** `prepare(next)()`: new handshakes get `next`'s certificates; open connections keep theirs. */
  reload(next: ListenerTlsConfig): void
}

/** ALPN offered by the listener: HTTP/1.1 only (the pipeline speaks HTTP/1.1). */
export const TLS_ALPN_PROTOCOLS: readonly string[] = ['http/1.1']

/**
 * Creates the HTTPS server for `server.tls`: the default certificate (the entry without
 * `serverName`, else the first), SNI by exact name, then `*.suffix` (one label), then the default;
 * ALPN `http/1.1`; `minVersion`; with `ca`, client certificates are required and verified (mutual
 * TLS). A handshake gets `handshakeTimeoutMs` (the head timeout), then the socket is closed.
 * Throws, naming `server.tls`, on a runtime whose `node:https` cannot do this (Bun 1.4: no
 * `SNICallback`, `setSecureContext`, ALPN or handshake timeout) rather than serve TLS half-way.
 * @example
 * const { server } = createTlsServer(tls, { headersTimeout: 10_000, noDelay: true }, (req, res) => res.end('ok'), 10_000)
 * server.listen(8443)
 */
export function createTlsServer(tls: ListenerTlsConfig, options: HttpServerOptions, listener: RequestListener, handshakeTimeoutMs: number): TlsListener {
  let built = buildContexts(tls)
  const state = { config: tls, clientErrors: 0 }
  const server: HttpsServer = createHttpsServer(
    {
      ...options,
      ...built.defaultOptions,
      ALPNProtocols: [...TLS_ALPN_PROTOCOLS],
      handshakeTimeout: handshakeTimeoutMs,
      requestCert: tls.ca !== undefined,
      rejectUnauthorized: tls.ca !== undefined,
      // Exact name, then a one-label wildcard, then (undefined) the server's default context.
      SNICallback: (servername, cb) => cb(null, pickContext(built.named, servername)),
    },
    listener as RequestListener<typeof IncomingMessage, typeof ServerResponse>,
  )
  const missing = (['setSecureContext', 'addContext'] as const).filter((m) => typeof (server as Partial<HttpsServer>)[m] !== 'function')
  if (missing.length > 0) {
    throw new Error(
      `server.tls is not supported on this runtime: its node:https server has no ${missing.join('/')} (so no SNI, certificate reload or handshake timeout); run the gateway on Node or Deno, or terminate TLS in front of it`,
    )
  }
  // A failed or stalled handshake (port scanners, plain HTTP sent to the TLS port, timeouts): close
  // it; one line per failure would let any client flood the log.
  server.on('tlsClientError', (_err: Error, socket: Socket) => {
    state.clientErrors++
    socket.destroy()
  })
  const prepare = (next: ListenerTlsConfig): (() => void) => {
    if ((next.ca === undefined) !== (state.config.ca === undefined)) {
      throw new Error('server.tls.ca: turning client certificates (mutual TLS) on or off needs a restart')
    }
    const nextBuilt = buildContexts(next)
    return () => {
      server.setSecureContext(nextBuilt.defaultOptions)
      built = nextBuilt
      state.config = next
    }
  }
  return {
    server: server as unknown as Server,
    get config() {
      return state.config
    },
    get clientErrors() {
      return state.clientErrors
    },
    prepare,
    reload: (next) => prepare(next)(),
  }
}

/**
 * A `fetch` for health probes that verifies `https:` targets like the upstream's pool does (`ca`,
 * `servername`, `rejectUnauthorized` of `upstreams.NAME.tls`); other URLs go to the global `fetch`.
 * Only the status is read: the response body is empty.
 * @example createHealthChecker({ endpoints, active: {}, fetch: tlsProbeFetch({ ca, servername: 'api.internal', rejectUnauthorized: true, caFile: 'ca.pem' }) })
 */
export function tlsProbeFetch(tls: UpstreamTlsConfig): typeof fetch {
  // No keep-alive: a probe every few seconds is cheaper than holding an idle TLS connection per endpoint.
  // Only defined keys: an agent's `servername: undefined` would override the name taken from the URL.
  const agent = new HttpsAgent({
    keepAlive: false,
    rejectUnauthorized: tls.rejectUnauthorized !== false,
    ALPNProtocols: [...TLS_ALPN_PROTOCOLS],
    ...(tls.ca !== undefined && { ca: tls.ca }),
    ...(tls.servername !== undefined && { servername: tls.servername }),
  })
  const probe = (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.protocol !== 'https:') return fetch(input, init)
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method: init?.method ?? 'GET',
          headers: Object.fromEntries(new Headers(init?.headers)),
          agent,
          signal: init?.signal ?? undefined,
        },
        (res) => {
          res.on('error', () => {})
          res.resume()
          resolve(new Response(null, { status: res.statusCode ?? 502 }))
        },
      )
      req.on('error', reject)
      req.end()
    })
  }
  return probe as typeof fetch
}

interface BuiltContexts {
  /** Options of the default context (`setSecureContext` takes options, not a context). */
  defaultOptions: SecureContextOptions
  /** Lower-case server name (`*.example.com` included) → context. */
  named: Map<string, SecureContext>
}

function buildContexts(tls: ListenerTlsConfig): BuiltContexts {
  const list = tls.certificates
  const options = (c: TlsCertificateConfig): SecureContextOptions => ({ cert: c.cert, key: c.key, ca: tls.ca, minVersion: tls.minVersion })
  const named = new Map<string, SecureContext>()
  let defaultOptions: SecureContextOptions | undefined
  list.forEach((c, i) => {
    const at = list.length > 1 || c.serverName !== undefined ? `server.tls[${i}]` : 'server.tls'
    let context: SecureContext
    try {
      // Checked here too: Deno's createSecureContext accepts a key of another certificate.
      if (!new X509Certificate(c.cert).checkPrivateKey(createPrivateKey(c.key))) throw new Error('the key does not belong to the certificate')
      context = createSecureContext(options(c))
    } catch (err) {
      throw new Error(`${at}: the certificate ${c.certFile} and key ${c.keyFile} cannot be used together (${(err as Error).message})`, { cause: err })
    }
    if (c.serverName === undefined) defaultOptions = options(c)
    else named.set(c.serverName, context)
  })
  // Every entry names a host: the first one answers clients that send no (or an unknown) name.
  return { defaultOptions: defaultOptions ?? options(list[0]), named }
}

function pickContext(named: Map<string, SecureContext>, servername: string): SecureContext | undefined {
  if (named.size === 0 || !servername) return undefined
  const name = servername.toLowerCase().replace(/\.$/, '')
  const exact = named.get(name)
  if (exact) return exact
  const dot = name.indexOf('.')
  return dot > 0 ? named.get(`*${name.slice(dot)}`) : undefined
}
