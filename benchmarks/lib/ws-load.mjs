// WebSocket load generator (run pinned to the load core): `connections` clients each send a
// message, wait for its echo, and repeat for `durationS`; prints one JSON line with round trips
// per second and round-trip latency percentiles.
// Usage: node ws-load.mjs <ws-url> <durationS> <connections> [messageBytes]
import { WebSocket } from 'ws'

const [url, durationArg, connectionsArg, sizeArg] = process.argv.slice(2)
const durationMs = Number(durationArg) * 1000
const connections = Number(connectionsArg)
const payload = Buffer.alloc(Number(sizeArg ?? 64), 120)
const samples = []
let errors = 0

const open = () =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })

const sockets = await Promise.all(Array.from({ length: connections }, open))
const start = performance.now()
const deadline = start + durationMs
await Promise.all(
  sockets.map(
    (ws) =>
      new Promise((resolve) => {
        let sent = 0
        const next = () => {
          if (performance.now() >= deadline) return resolve()
          sent = performance.now()
          ws.send(payload)
        }
        ws.on('message', () => {
          samples.push(performance.now() - sent)
          next()
        })
        ws.on('error', () => {
          errors++
          resolve()
        })
        ws.on('close', resolve)
        next()
      }),
  ),
)
const elapsedS = (performance.now() - start) / 1000
for (const ws of sockets) ws.terminate()
samples.sort((a, b) => a - b)
const pct = (q) => (samples.length ? samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)] : Number.NaN)
console.log(JSON.stringify({ requests: samples.length, rps: samples.length / elapsedS, p50Ms: pct(0.5), p99Ms: pct(0.99), socketErrors: errors, non2xx: 0 }))
