#!/usr/bin/env node
// WebSocket tunnel benchmark: echo round trips through the tunnel vs a direct connection.
//
//   node packages/websocket-tunnel/bench/ws-bench.mjs [--messages 20000] [--size 64] [--rounds 3] [--json]
//
// Build step: the workspace `dist/` still imports `@switchboard/core` from its `.ts` sources, which
// Node 20 cannot load, so this script first bundles `src/index.ts` (core inlined, `ws` external)
// with the repo's esbuild into a temp file, the same code tsup ships. No prior `npx tsup` needed.
//
// Three processes: a `ws` echo server, the tunnel (transparent and frame mode on two ports), and
// this script as the client. 10 connections each do messages/10 sequential round trips;
// rounds interleave direct / transparent / frame so machine noise hits every path alike. Reports the
// median round: messages/s and round-trip p50/p99, and the latency the tunnel adds over direct.
// For steadier numbers pin the processes: taskset -c 0 node bench/ws-bench.mjs (children inherit).
import { execFileSync, fork } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { WebSocket, WebSocketServer } from 'ws'

const role = process.argv[2]
if (role === '--role=echo') await runEcho()
else if (role === '--role=tunnel') await runTunnel()
else await main()

async function runEcho() {
  const server = createServer()
  const wss = new WebSocketServer({ server, perMessageDeflate: false })
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })))
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('disconnect', () => process.exit(0))
}

async function runTunnel() {
  const { tunnelUpgrade } = await import(pathToFileURL(process.env.BENCH_BUNDLE).href)
  const [{ target }] = await once(process, 'message')
  const listen = (options) =>
    new Promise((resolve) => {
      const server = createServer((_req, res) => res.writeHead(404).end())
      server.on('upgrade', (req, socket, head) => void tunnelUpgrade(req, socket, head, { target, ...options }))
      server.listen(0, '127.0.0.1', () => resolve(server.address().port))
    })
  const transparent = await listen({})
  const frame = await listen({ maxMessageBytes: 16 << 20 })
  process.send({ transparent, frame })
  process.on('disconnect', () => process.exit(0))
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const messages = Math.min(Math.max(Number(args.messages ?? 20_000), 100), 1_000_000)
  const size = Math.min(Math.max(Number(args.size ?? 64), 1), 16 << 20)
  const rounds = Math.min(Math.max(Number(args.rounds ?? 3), 1), 20)
  const connections = 10
  const self = fileURLToPath(import.meta.url)
  const bundle = buildBundle()
  const echo = fork(self, ['--role=echo'])
  const tunnel = fork(self, ['--role=tunnel'], { env: { ...process.env, BENCH_BUNDLE: bundle.file } })
  const cleanup = () => {
    echo.kill()
    tunnel.kill()
    rmSync(bundle.dir, { recursive: true, force: true })
  }
  let echoPort
  let ports
  try {
    ;[{ port: echoPort }] = await firstMessage(echo)
    tunnel.send({ target: `http://127.0.0.1:${echoPort}` })
    ;[ports] = await firstMessage(tunnel)
  } catch (err) {
    cleanup()
    throw err
  }
  const paths = [
    ['direct', `ws://127.0.0.1:${echoPort}/`],
    ['transparent', `ws://127.0.0.1:${ports.transparent}/`],
    ['frame', `ws://127.0.0.1:${ports.frame}/`],
  ]
  const payload = Buffer.alloc(size, 0x61)
  const results = Object.fromEntries(paths.map(([name]) => [name, []]))
  try {
    for (const [, url] of paths) await runPath(url, payload, Math.min(messages, 1000), connections) // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const [name, url] of paths) results[name].push(await runPath(url, payload, messages, connections))
    }
  } finally {
    cleanup()
  }
  const summary = paths.map(([name]) => ({ path: name, ...median(results[name]) }))
  const direct = summary[0]
  for (const s of summary) {
    s.addedP50Us = round(s.p50Us - direct.p50Us)
    s.addedP99Us = round(s.p99Us - direct.p99Us)
  }
  if (args.json) {
    console.log(JSON.stringify({ messages, size, rounds, connections, node: process.version, results: summary }, null, 2))
    return
  }
  console.log(`${messages} echo round trips of ${size} B over ${connections} connections, median of ${rounds} rounds (${process.version})`)
  console.log('| path | msgs/s | p50 µs | p99 µs | added p50 µs | added p99 µs |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
  for (const s of summary) {
    console.log(`| ${s.path} | ${s.msgsPerSec} | ${s.p50Us} | ${s.p99Us} | ${s.path === 'direct' ? '—' : s.addedP50Us} | ${s.path === 'direct' ? '—' : s.addedP99Us} |`)
  }
}

function buildBundle() {
  const root = fileURLToPath(new URL('../../../', import.meta.url))
  const esbuild = join(root, 'node_modules/.bin/esbuild')
  if (!existsSync(esbuild)) throw new Error(`esbuild not found at ${esbuild}: run pnpm install at the repo root`)
  const dir = mkdtempSync(join(tmpdir(), 'ws-bench-'))
  const file = join(dir, 'tunnel.mjs')
  const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url))
  execFileSync(esbuild, [entry, '--bundle', '--platform=node', '--format=esm', '--target=node20', '--external:ws', `--outfile=${file}`, '--log-level=warning'])
  // The bundle lives in a temp dir: let it resolve `ws` from this package.
  const wsUrl = JSON.stringify(import.meta.resolve('ws'))
  writeFileSync(file, readFileSync(file, 'utf8').replaceAll('from "ws"', `from ${wsUrl}`))
  return { dir, file }
}

/** The child's first IPC message; rejects if it exits first (so a crash never hangs the run). */
async function firstMessage(child) {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve([m]))
    child.once('exit', (code) => reject(new Error(`benchmark child exited with code ${code}`)))
  })
}

async function runPath(url, payload, messages, connections) {
  const sockets = await Promise.all(
    Array.from({ length: connections }, async () => {
      const ws = new WebSocket(url, { perMessageDeflate: false })
      await once(ws, 'open')
      return ws
    }),
  )
  const perConnection = Math.ceil(messages / connections)
  const samples = new Float64Array(perConnection * connections)
  let n = 0
  const started = process.hrtime.bigint()
  await Promise.all(
    sockets.map(async (ws) => {
      for (let i = 0; i < perConnection; i++) {
        const t0 = process.hrtime.bigint()
        ws.send(payload)
        await once(ws, 'message')
        samples[n++] = Number(process.hrtime.bigint() - t0) / 1000
      }
    }),
  )
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9
  await Promise.all(
    sockets.map((ws) => {
      ws.close()
      return once(ws, 'close')
    }),
  )
  const sorted = samples.subarray(0, n).sort()
  return {
    msgsPerSec: Math.round(n / elapsedS),
    p50Us: round(sorted[Math.floor(n * 0.5)]),
    p99Us: round(sorted[Math.min(n - 1, Math.floor(n * 0.99))]),
  }
}

function median(runs) {
  const pick = (key) => runs.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)]
  return { msgsPerSec: pick('msgsPerSec'), p50Us: pick('p50Us'), p99Us: pick('p99Us') }
}

function round(x) {
  return Math.round(x * 10) / 10
}

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '')
    if (key === 'json') out.json = true
    else out[key] = argv[++i]
  }
  return out
}
