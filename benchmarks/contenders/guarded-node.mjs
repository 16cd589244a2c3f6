// floor-node (../shared/bench/floor-node.js) plus, written by hand, the work the gateway's default
// pipeline does on every request: head checks, forwarding headers and Via both ways, trace
// propagation, a pool bound with a queue timeout, upstream timeouts, client-abort propagation, one
// retry before the head for idempotent requests, endpoint stats and request metrics, JSON errors.
// The upstream call uses undici's dispatch-handler API, as the gateway does (floor-node uses
// `Pool.stream`): with `Pool.stream`, propagating a client abort needs an AbortController per
// request, which alone cost about 8 µs of this proxy's 55 on a small GET.
// It answers what "the floor" costs once it does the gateway's job, so the two can be compared
// without the feature list in between. Not a product: no routing, no policies, no reload.
// Contract: listen on 127.0.0.1:$PORT, forward every request to $UPSTREAM (origin URL).
import http from 'node:http'
import { Pool } from 'undici'

const PORT = Number(process.env.PORT)
const UPSTREAM = process.env.UPSTREAM
const CONNECTIONS = 128
const QUEUE_TIMEOUT_MS = 1_000
const VIA = '1.1 guarded'
const pool = new Pool(UPSTREAM, { connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 60e3, keepAliveMaxTimeout: 600e3 })

// Hop-by-hop fields (RFC 9110 §7.6.1), host (undici sets it), and what the proxy itself sets.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'expect'])
const OURS = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip', 'x-forwarded-prefix', 'via', 'traceparent'])
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

// Request metrics: one counter per status class, one duration histogram.
const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const metrics = { byClass: [0, 0, 0, 0, 0, 0], buckets: new Array(BOUNDS.length + 1).fill(0), sum: 0 }
// Endpoint stats, as a least-latency balancer or passive health would keep them.
const endpoint = { active: 0, ewmaMs: 0, failures: 0 }
// The pool bound: at most CONNECTIONS requests upstream at once, the rest wait up to QUEUE_TIMEOUT_MS.
const waiting = []

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const random = new Uint8Array(4080)
let randomHex = ''
let randomAt = random.length
function hex(bytes) {
  if (randomAt + bytes > random.length) {
    crypto.getRandomValues(random)
    randomHex = Buffer.from(random).toString('hex')
    randomAt = 0
  }
  const out = randomHex.slice(2 * randomAt, 2 * (randomAt + bytes))
  randomAt += bytes
  return out
}

function record(status, t0) {
  const seconds = (performance.now() - t0) / 1e3
  metrics.byClass[status === 0 ? 0 : Math.min(5, Math.floor(status / 100))]++
  let i = 0
  while (i < BOUNDS.length && seconds > BOUNDS[i]) i++
  metrics.buckets[i]++
  metrics.sum += seconds
}

function refuse(res, status, code, t0) {
  const body = JSON.stringify({ error: { status, code } })
  res.shouldKeepAlive = status < 500
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
  record(status, t0)
}

function admit(start, fail) {
  if (endpoint.active < CONNECTIONS && waiting.length === 0) return start()
  const waiter = { start, timer: setTimeout(() => { waiting.splice(waiting.indexOf(waiter), 1); fail() }, QUEUE_TIMEOUT_MS) }
  waiting.push(waiter)
}

function released() {
  const next = waiting.shift()
  if (next) {
    clearTimeout(next.timer)
    next.start()
  }
}

function upstreamHead(req) {
  const raw = req.rawHeaders
  const out = []
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase()
    if (!HOP.has(lower) && !OURS.has(lower)) out.push(raw[i], raw[i + 1])
  }
  const m = typeof req.headers.traceparent === 'string' ? TRACEPARENT.exec(req.headers.traceparent) : null
  out.push(
    'x-forwarded-for', req.socket.remoteAddress ?? '',
    'x-forwarded-proto', 'http',
    'x-forwarded-host', req.headers.host ?? '',
    'x-forwarded-port', String(req.socket.localPort),
    'via', req.headers.via ? `${req.headers.via}, ${VIA}` : VIA,
    'traceparent', `00-${m ? m[1] : hex(16)}-${hex(8)}-${m ? m[3] : '00'}`,
  )
  return out
}

// One upstream try through undici's dispatch-handler API (as the gateway does), so a client that
// leaves aborts the upstream request through undici's controller, without an AbortController.
function send(req, res, headers, t0, tries) {
  endpoint.active++
  const started = performance.now()
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0'
  let controller = null
  let head = false
  let done = false
  const onClose = () => {
    if (!res.writableFinished) controller?.abort(new Error('client gone'))
  }
  const onDrain = () => controller?.resume()
  res.on('close', onClose)
  const finish = (err) => {
    if (done) return
    done = true
    res.off('close', onClose)
    res.off('drain', onDrain)
    endpoint.active--
    const ms = performance.now() - started
    endpoint.ewmaMs = endpoint.ewmaMs === 0 ? ms : endpoint.ewmaMs * 0.9 + ms * 0.1
    released()
    if (!err) return record(res.statusCode, t0)
    endpoint.failures++
    if (head || res.destroyed) {
      res.destroy()
      return record(0, t0)
    }
    // Before any response byte: once more for an idempotent request without a body.
    if (tries < 2 && IDEMPOTENT.has(req.method) && !hasBody) return admit(() => send(req, res, headers, t0, tries + 1), () => refuse(res, 503, 'ERR_UPSTREAM_POOL_SATURATED', t0))
    const timeout = err.code === 'UND_ERR_HEADERS_TIMEOUT'
    refuse(res, timeout ? 504 : 502, timeout ? 'ERR_UPSTREAM_TIMEOUT' : 'ERR_BAD_GATEWAY', t0)
  }
  pool.dispatch(
    { path: req.url, method: req.method, headers, body: hasBody ? req : null, headersTimeout: 30e3, bodyTimeout: 60e3 },
    {
      onRequestStart(c) {
        controller = c
        if (res.destroyed) c.abort(new Error('client gone'))
      },
      onResponseStart(c, statusCode, upstream) {
        if (statusCode < 200) return
        head = true
        const out = {}
        for (const name in upstream) if (!HOP.has(name)) out[name] = upstream[name]
        out.via = upstream.via ? `${upstream.via}, ${VIA}` : VIA
        res.writeHead(statusCode, out)
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause()
          res.once('drain', onDrain)
        }
      },
      onResponseEnd() {
        res.end()
        finish(null)
      },
      onResponseError(_c, err) {
        finish(err)
      },
    },
  )
}

const server = http.createServer({ maxHeaderSize: 16 * 1024, headersTimeout: 10e3, requestTimeout: 0, keepAliveTimeout: 65e3, noDelay: true }, (req, res) => {
  const t0 = performance.now()
  req.on('error', () => {})
  res.on('error', () => {})
  if (req.rawHeaders.length > 200) return refuse(res, 431, 'ERR_HEADERS_TOO_LARGE', t0)
  if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) return refuse(res, 400, 'ERR_BAD_REQUEST', t0)
  if (req.url[0] !== '/') return refuse(res, 400, 'ERR_BAD_REQUEST', t0)
  const headers = upstreamHead(req)
  admit(() => send(req, res, headers, t0, 1), () => refuse(res, 503, 'ERR_UPSTREAM_POOL_SATURATED', t0))
})
server.maxHeadersCount = 202
server.listen(PORT, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
