// The runtime's native server with our Web-standard proxyFetch(): Bun.serve on Bun, Deno.serve
// on Deno. Measures the "native fast path" the gateway could use there instead of node:http.
// Imports the TypeScript source directly (Bun and Deno run it). Env: PORT, UPSTREAM.
import { proxyFetch } from '../../packages/proxy-pass/src/index.ts'

const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:8080'
const port = Number(process.env.PORT ?? 0)

if (typeof Bun !== 'undefined') {
  const server = Bun.serve({
    port,
    hostname: '127.0.0.1',
    maxRequestBodySize: 64 * 1024 * 1024,
    fetch: (req, srv) => proxyFetch(req, upstream, { clientIp: srv.requestIP(req)?.address }),
  })
  console.log(`native-bun listening on ${server.port}`)
} else if (typeof Deno !== 'undefined') {
  Deno.serve({ port, hostname: '127.0.0.1', onListen: ({ port: p }) => console.log(`native-deno listening on ${p}`) }, (req, info) =>
    proxyFetch(req, upstream, { clientIp: info.remoteAddr.hostname }),
  )
} else {
  throw new Error('run this under Bun or Deno')
}
