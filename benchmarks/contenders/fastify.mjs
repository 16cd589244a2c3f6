// fastify 5 + @fastify/http-proxy 11 with default options (undici under the hood via
// @fastify/reply-from). Runs under Node and Bun. Env: PORT, UPSTREAM.
// Bun resolves the bare `undici` to a stub whose Pool cannot send (RUNTIME-NOTES.md), which
// makes every proxied request a 500; there we hand reply-from a real undici Pool loaded by path.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:8080'
const port = Number(process.env.PORT ?? 0)

const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
const undici = 'Bun' in globalThis ? new (await import('undici/index.js')).Pool(upstream) : undefined
await app.register(proxy, { upstream, ...(undici ? { undici } : {}) })
const address = await app.listen({ host: '127.0.0.1', port })
console.log(`fastify listening on ${address}`)

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { app.close().finally(() => process.exit(0)) })
