// End-to-end: `server.workers` on the *built* CLI, under the runtime running this file (Node, Bun or
// Deno: each runs node:cluster). A primary forks the workers; every request opens a new connection
// so the kernel (or Node's round-robin) spreads them; the admin API answers for the whole fleet.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, type GatewayProcess, RUNTIME, runCli, startGatewayProcess, tempFile } from './harness.ts'

const HAS_PROMTOOL = spawnSync('sh', ['-c', 'command -v promtool']).status === 0

const cleanup: Array<() => Promise<unknown>> = []
afterAll(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
})

interface WorkerInfo {
  id: number
  pid: number
  state: string
  restarts: number
  requests: number
  configVersion: number
}

describe(`server.workers on the built CLI under ${RUNTIME}`, () => {
  // Deno refuses server.workers > 1 (see the Deno case below).
  it.skipIf(RUNTIME === 'deno')('spreads requests over 2 worker processes, counts them exactly, replaces a killed worker, rolls reloads, drains on SIGTERM', async () => {
    const up = await upstream()
    const adminPort = await freePort()
    const yaml = (o: { extraRoute?: boolean; workers?: number } = {}): string => `server:
  host: 127.0.0.1
  port: 8080
  workers: ${o.workers ?? 2}
  shutdownTimeout: 2s
admin:
  listen: 127.0.0.1:${adminPort}
upstreams:
  a:
    targets:
      - url: http://127.0.0.1:${up.port}
routes:
  - name: api
    match: { path: /api/* }
    upstream: a
${o.extraRoute ? '  - name: added\n    match: { path: /added/* }\n    upstream: a\n' : ''}`
    const gw = await startGatewayProcess(yaml())
    cleanup.push(() => gw.stop('SIGKILL'))
    const file = configFile(gw)
    const admin = `http://127.0.0.1:${adminPort}`

    // Every worker listed, each a process of its own, none of them the primary.
    let workers = await listWorkers(admin)
    expect(workers.map((w) => w.id)).toEqual([1, 2])
    const pids = workers.map((w) => w.pid)
    expect(new Set(pids).size).toBe(2)
    expect(pids).not.toContain(gw.child.pid)
    for (const pid of pids) expect(alive(pid)).toBe(true)

    // 60 requests on 60 connections: both workers answer some, and the counts add up exactly.
    const SENT = 60
    for (let i = 0; i < SENT; i++) expect((await get(`${gw.url}/api/${i}`)).status).toBe(200)
    workers = await listWorkers(admin)
    expect(workers.every((w) => w.requests > 0)).toBe(true)
    expect(workers.reduce((n, w) => n + w.requests, 0)).toBe(SENT)
    const metrics = await get(`${admin}/metrics`)
    expect(metrics.status).toBe(200)
    expect(sample(metrics.body, 'switchboard_requests_total{route="api",upstream="a",code="2xx"}')).toBe(SENT)
    expect(sample(metrics.body, 'switchboard_request_duration_seconds_count{route="api",upstream="a"}')).toBe(SENT)
    expect(sample(metrics.body, 'switchboard_workers')).toBe(2)
    if (HAS_PROMTOOL) expect(spawnSync('promtool', ['check', 'metrics'], { input: metrics.body, encoding: 'utf8' }).status).toBe(0)
    const stats = JSON.parse((await get(`${admin}/admin/stats`)).body) as { workers: number; routes: Array<{ name: string; requests: number }> }
    expect(stats.workers).toBe(2)
    expect(stats.routes.find((r) => r.name === 'api')?.requests).toBe(SENT)
    expect(up.hits).toBe(SENT)

    // kill -9 one worker: the other keeps serving at once, and a new worker takes the dead one's id.
    process.kill(pids[0], 'SIGKILL')
    await until(() => !alive(pids[0]))
    for (let i = 0; i < 20; i++) expect((await get(`${gw.url}/api/during-${i}`)).status).toBe(200)
    workers = await until(async () => {
      const list = await listWorkers(admin)
      return list.length === 2 && list.every((w) => w.state === 'ready') && !list.some((w) => w.pid === pids[0]) ? list : undefined
    })
    const replaced = workers.find((w) => w.id === 1)!
    expect(replaced.restarts).toBe(1)
    expect(alive(replaced.pid)).toBe(true)
    expect(gw.output()).toMatch(new RegExp(`worker 1 \\(pid ${pids[0]}\\) exited with signal SIGKILL: replacing it`))
    for (let i = 0; i < 40; i++) expect((await get(`${gw.url}/api/after-${i}`)).status).toBe(200)
    workers = await listWorkers(admin)
    expect(workers.find((w) => w.id === 1)!.requests).toBeGreaterThan(0)

    // SIGHUP on the primary: every worker takes the new config (a route added), one after the other.
    expect((await get(`${gw.url}/added/x`)).status).toBe(404)
    writeFileSync(file, yaml({ extraRoute: true }))
    gw.child.kill('SIGHUP')
    workers = await until(async () => {
      const list = await listWorkers(admin)
      return list.every((w) => w.configVersion === 2) ? list : undefined
    })
    const before = workers.map((w) => w.requests)
    for (let i = 0; i < 40; i++) expect((await get(`${gw.url}/added/${i}`)).status).toBe(200)
    workers = await listWorkers(admin)
    workers.forEach((w, i) => expect(w.requests).toBeGreaterThan(before[i]))
    expect(gw.output()).toContain('SIGHUP: config reloaded in 2 workers')

    // A bad config is refused before any worker is touched: both keep the one in force.
    writeFileSync(file, yaml({ extraRoute: true }).replace('upstream: a\n  - name: added', 'upstream: nowhere\n  - name: added'))
    const refused = await post(`${admin}/admin/reload`)
    expect(refused.status).toBe(422)
    expect(JSON.parse(refused.body)).toMatchObject({ reloaded: false, error: { code: 'ERR_RELOAD_REFUSED' } })
    expect(JSON.parse(refused.body).error.message).toContain('routes[0].upstream')
    workers = await listWorkers(admin)
    expect(workers.map((w) => w.configVersion)).toEqual([2, 2])
    for (let i = 0; i < 20; i++) expect((await get(`${gw.url}/added/again-${i}`)).status).toBe(200)

    // server.workers changed on reload: a third worker is forked, then retired again.
    writeFileSync(file, yaml({ extraRoute: true, workers: 3 }))
    expect((await post(`${admin}/admin/reload`)).status).toBe(200)
    workers = await until(async () => {
      const list = await listWorkers(admin)
      return list.length === 3 && list.every((w) => w.state === 'ready') ? list : undefined
    })
    const third = workers.find((w) => w.id === 3)!
    writeFileSync(file, yaml({ extraRoute: true, workers: 2 }))
    expect((await post(`${admin}/admin/reload`)).status).toBe(200)
    await until(async () => ((await listWorkers(admin)).length === 2 ? true : undefined))
    await until(() => !alive(third.pid))
    expect(gw.output()).toContain('worker 3')

    // SIGTERM: every worker drains and exits, then the primary exits 0.
    const last = (await listWorkers(admin)).map((w) => w.pid)
    expect(await gw.stop('SIGTERM')).toBe(0)
    for (const pid of last) expect(alive(pid)).toBe(false)
  }, 90_000)

  // Deno refuses server.workers > 1 (see the Deno case below).
  it.skipIf(RUNTIME === 'deno')('answers admin paths of the main listener for the whole fleet (no admin.listen), and warns that memory stores are per worker', async () => {
    const up = await upstream()
    const gw = await startGatewayProcess(`server:
  host: 127.0.0.1
  port: 8080
  workers: 2
  shutdownTimeout: 2s
admin: true
metrics: { path: /metrics }
policies:
  limit:
    use: rate-limit
    limit: 1000/min
upstreams:
  a:
    targets:
      - url: http://127.0.0.1:${up.port}
routes:
  - name: api
    match: { path: /api/* }
    upstream: a
    policies: [limit]
`)
    cleanup.push(() => gw.stop('SIGKILL'))
    expect(gw.output()).toMatch(/server\.workers: 2 with store: memory.*store: \{ driver: redis/)
    await until(async () => ((await listWorkers(gw.url)).length === 2 ? true : undefined))
    const SENT = 30
    for (let i = 0; i < SENT; i++) expect((await get(`${gw.url}/api/${i}`)).status).toBe(200)
    // Whichever worker takes this request answers with both workers' figures.
    const stats = JSON.parse((await get(`${gw.url}/admin/stats`)).body) as { workers: number; routes: Array<{ name: string; requests: number }> }
    expect(stats.workers).toBe(2)
    expect(stats.routes.find((r) => r.name === 'api')?.requests).toBe(SENT)
    const metrics = await get(`${gw.url}/metrics`)
    expect(sample(metrics.body, 'switchboard_requests_total{route="api",upstream="a",code="2xx"}')).toBe(SENT)
    const workers = await listWorkers(gw.url)
    expect(workers.every((w) => w.requests > 0)).toBe(true)
    // Worker log lines say which worker wrote them.
    expect(gw.output()).toMatch(/"worker":1/)
    expect(gw.output()).toMatch(/"worker":2/)
    // POST /admin/reload on the main listener rolls through both workers.
    const reloaded = await post(`${gw.url}/admin/reload`)
    expect(reloaded.status).toBe(200)
    expect(JSON.parse(reloaded.body)).toMatchObject({ reloaded: true, workers: [1, 2] })
    expect(await gw.stop('SIGTERM')).toBe(0)
  }, 60_000)

  // Deno refuses server.workers > 1 (see the Deno case below).
  it.skipIf(RUNTIME === 'deno')('exits non-zero, without a fork loop, when a worker dies before the fleet is up', async () => {
    const plugin = tempFile('crash.mjs', CRASH_PLUGIN)
    const marker = join(dirname(plugin), 'crash-now')
    writeFileSync(marker, '')
    const config = tempFile('gateway.yaml', crashConfig(await freePort(), plugin))
    const result = await runCli(['--config', config], { CRASH_MARKER: marker, CRASH_AT_ONCE: '1' })
    // The worker's own exit code on Node and Deno; Bun's cluster may report 1.
    expect(result.code === 3 || (RUNTIME === 'bun' && result.code === 1)).toBe(true)
    expect(result.output).toMatch(/worker \d exited with code 3 before it was serving/)
    expect(result.output).not.toContain('replacing it')
  }, 60_000)

  // Deno refuses server.workers > 1 (see the Deno case below).
  it.skipIf(RUNTIME === 'deno')('stops every worker and exits 1 when a replaced worker keeps crashing at start (5 times in a row)', async () => {
    const plugin = tempFile('crash.mjs', CRASH_PLUGIN)
    const marker = join(dirname(plugin), 'crash-now')
    const gw = await startGatewayProcess(crashConfig(8080, plugin), { CRASH_MARKER: marker })
    cleanup.push(() => gw.stop('SIGKILL'))
    const pids = (await listWorkers(gw.url)).map((w) => w.pid)
    // From now on every new worker exits 50 ms after it started serving.
    writeFileSync(marker, '')
    process.kill(pids[0], 'SIGKILL')
    const code = await new Promise<number | null>((r) => (gw.child.exitCode !== null ? r(gw.child.exitCode) : gw.child.once('exit', (c) => r(c))))
    expect(code).toBe(1)
    expect(gw.output()).toContain('5 times in a row')
    // Four crashes at start were replaced, the fifth stopped the fleet (the SIGKILL counts as one
    // more when it came within 2 s of that worker's start).
    const replaced = (gw.output().match(/worker 1 \(pid \d+\) exited with (code 3|signal SIGKILL): replacing it/g) ?? []).length
    expect(replaced).toBeGreaterThanOrEqual(4)
    expect(replaced).toBeLessThanOrEqual(5)
    expect((gw.output().match(/exited with code 3: replacing it/g) ?? []).length).toBeLessThanOrEqual(4)
    for (const pid of pids) expect(alive(pid)).toBe(false)
  }, 60_000)

  it.runIf(RUNTIME === 'deno')('refuses server.workers above 1 on Deno at start, naming the key, with no worker forked', async () => {
    const config = tempFile('gateway.yaml', `server:\n  host: 127.0.0.1\n  port: ${await freePort()}\n  workers: 2\nupstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:9" }]\nroutes:\n  - name: all\n    match: { path: /* }\n    upstream: a\n`)
    const result = await runCli(['--config', config])
    expect(result.code).toBe(2)
    expect(result.output).toContain('server.workers: 2 is not supported on Deno')
    expect(result.output).not.toContain('serving on')
  }, 30_000)

  it('refuses server.workers that is not auto or a whole number from 1, naming the key, before forking', async () => {
    for (const bad of ['0', 'lots']) {
      const config = tempFile('gateway.yaml', `server:\n  workers: ${bad}\nupstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:9" }]\nroutes:\n  - name: all\n    match: { path: /* }\n    upstream: a\n`)
      const result = await runCli(['--config', config])
      expect(result.code).toBe(2)
      expect(result.output).toContain('server.workers')
      expect(result.output).not.toContain('worker 1')
    }
  }, 30_000)
})

/** While the file $CRASH_MARKER names exists, exits a worker 50 ms after it started serving (at once with $CRASH_AT_ONCE). */
const CRASH_PLUGIN = `import { existsSync } from 'node:fs'
export default {
  name: 'crash-in-workers',
  setup(api) {
    api.hooks({ startup() {
      if (!process.env.SWITCHBOARD_WORKER_ID || !existsSync(process.env.CRASH_MARKER)) return
      if (process.env.CRASH_AT_ONCE) process.exit(3) // before it serves
      setTimeout(() => process.exit(3), 50)
    } })
  },
}
`

function crashConfig(port: number, plugin: string): string {
  return `plugins:\n  - ${plugin}\nserver:\n  host: 127.0.0.1\n  port: ${port}\n  workers: 2\nadmin: true\nupstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:9" }]\nroutes:\n  - name: all\n    match: { path: /api/* }\n    upstream: a\n`
}

function configFile(gw: GatewayProcess): string {
  const args = gw.child.spawnargs
  return args[args.indexOf('--config') + 1]
}

async function listWorkers(base: string): Promise<WorkerInfo[]> {
  const res = await get(`${base}/admin/workers`)
  expect(res.status).toBe(200)
  return (JSON.parse(res.body) as { workers: WorkerInfo[] }).workers
}

/** The value of one sample line of a Prometheus text. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls `fn` until it returns something truthy (the test's own timeout bounds it). */
async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  for (;;) {
    const v = await fn()
    if (v) return v
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** One request on a connection of its own (no keep-alive), so each may land on another worker. */
function get(url: string): Promise<{ status: number; body: string }> {
  return call('GET', url)
}

function post(url: string): Promise<{ status: number; body: string }> {
  return call('POST', url)
}

function call(method: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function upstream(): Promise<{ port: number; hits: number; server: Server }> {
  const state = { port: 0, hits: 0, server: undefined as unknown as Server }
  state.server = createServer((req, res) => {
    state.hits++
    req.resume()
    res.end(`ok ${req.url}`)
  })
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r))
  state.port = (state.server.address() as AddressInfo).port
  cleanup.push(() => new Promise((r) => state.server.close(r)))
  return state
}
