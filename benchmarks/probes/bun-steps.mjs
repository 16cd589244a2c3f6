// Probe: what each piece of per-request work the gateway's native transport does costs on Bun, on a
// small GET. Bun.serve on 127.0.0.1:$PORT proxies to $UPSTREAM with Bun's fetch, like the floor of
// ../shared/bench; $STEPS (comma-separated) adds the pieces the gateway adds:
//   ip        server.requestIP(req) (the client address; a getpeername per request)
//   signal    a listener on request.signal (client-abort propagation)
//   timeout   server.timeout(req, 0) (the gateway times requests itself)
//   abort     an AbortController whose signal goes to fetch (timeouts and client aborts upstream)
//   timer     a setTimeout/clearTimeout around the upstream head and one around the body
//   pairs     upstream headers as [name, value] pairs with X-Forwarded-For and Via added
//   buffer    the body read whole (arrayBuffer) and answered as one buffer with rebuilt headers
// No steps is the floor. Run it with ./bun-steps.sh (wrk and the origin on core 0, the probe on
// core 1).
const upstream = process.env.UPSTREAM.replace(/\/$/, '')
const STEPS = ['ip', 'signal', 'timeout', 'abort', 'timer', 'pairs', 'buffer']
const steps = new Set((process.env.STEPS ?? '').split(',').filter(Boolean))
for (const s of steps) if (!STEPS.includes(s)) throw new Error(`STEPS: unknown step '${s}' (one of ${STEPS.join(', ')})`)
const noop = () => {}

Bun.serve({
  port: Number(process.env.PORT),
  hostname: '127.0.0.1',
  async fetch(req, server) {
    if (steps.has('timeout')) server.timeout(req, 0)
    if (steps.has('ip')) server.requestIP(req)
    if (steps.has('signal')) req.signal.addEventListener('abort', noop, { once: true })
    const url = req.url
    const path = url.slice(url.indexOf('/', url.indexOf('//') + 2))
    let headers
    if (steps.has('pairs')) {
      headers = []
      req.headers.forEach((value, name) => {
        if (name !== 'host') headers.push([name, value])
      })
      headers.push(['x-forwarded-for', '127.0.0.1'], ['via', '1.1 switchboard'])
    } else {
      headers = new Headers(req.headers)
      headers.delete('host')
    }
    const init = { method: req.method, headers, body: req.body, redirect: 'manual', decompress: false }
    const abort = steps.has('abort') ? new AbortController() : undefined
    if (abort) init.signal = abort.signal
    const timed = async (work) => {
      if (!steps.has('timer')) return work()
      const timer = setTimeout(() => abort?.abort(), 30_000)
      try {
        return await work()
      } finally {
        clearTimeout(timer)
      }
    }
    const res = await timed(() => fetch(upstream + path, init))
    if (!steps.has('buffer')) return res
    const body = new Uint8Array(await timed(() => res.arrayBuffer()))
    const out = new Headers()
    res.headers.forEach((value, name) => out.set(name, value))
    return new Response(body, { status: res.status, headers: out })
  },
})
process.on('SIGTERM', () => process.exit(0))
