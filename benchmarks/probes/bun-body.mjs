// Probe: what each way of handing an upstream body to Bun.serve costs (1 MiB responses).
// Bun.serve on 127.0.0.1:$PORT proxies to $UPSTREAM with Bun's fetch; $VARIANT picks the body:
//   floor        return the upstream Response as it is (the floor of ../shared/bench)
//   passthrough  new Response(upstream.body, { status, headers }): Bun pipes natively
//   pull0        a JavaScript ReadableStream pulling the upstream reader, highWaterMark 0
//   pull1        the same, highWaterMark 1 (one chunk ahead; the gateway's native transport)
//   whole        await upstream.arrayBuffer(), then one buffer (the gateway's path for ≤ 64 KiB)
// Run it with ./bun-body.sh (wrk and the origin on core 0, the probe on core 1).
const upstream = process.env.UPSTREAM.replace(/\/$/, '')
const variant = process.env.VARIANT ?? 'floor'
const VARIANTS = ['floor', 'passthrough', 'pull0', 'pull1', 'whole']
if (!VARIANTS.includes(variant)) throw new Error(`VARIANT must be one of ${VARIANTS.join(', ')}`)

const pulling = (reader, highWaterMark) =>
  new ReadableStream({
    pull: (controller) =>
      reader.read().then((chunk) => {
        if (chunk.done) controller.close()
        else controller.enqueue(chunk.value)
      }),
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark })

Bun.serve({
  port: Number(process.env.PORT),
  hostname: '127.0.0.1',
  async fetch(req) {
    const url = req.url
    const headers = new Headers(req.headers)
    headers.delete('host')
    const up = await fetch(upstream + url.slice(url.indexOf('/', url.indexOf('//') + 2)), {
      method: req.method,
      headers,
      redirect: 'manual',
      decompress: false,
    })
    if (variant === 'floor') return up
    const init = { status: up.status, headers: new Headers(up.headers) }
    if (variant === 'passthrough') return new Response(up.body, init)
    if (variant === 'whole') return new Response(await up.arrayBuffer(), init)
    return new Response(pulling(up.body.getReader(), variant === 'pull0' ? 0 : 1), init)
  },
})
