// Seed 000 end to end through the built CLI: its own config format, payload routing, first-200
// discovery, remembered routes that survive a restart (SQLite) and are shared by two instances (Redis).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { mkdtempSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startRedis } from '../../scripts/redis-server.mjs'
import { type GatewayProcess, ROOT, RUNTIME, runCli, startGatewayProcess, tempFile } from './harness.ts'

const FIXTURES = join(ROOT, 'packages/discovery/test/fixtures')
const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

interface Backend extends Server {
  port: number
  url: string
  hits: Array<{ method: string; url: string; body: string }>
}

/** A backend that answers `status` (200 by default) with its name and what it received. */
async function backend(name: string, answer: (req: IncomingMessage, body: string) => number = () => 200): Promise<Backend> {
  const hits: Backend['hits'] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      hits.push({ method: req.method!, url: req.url!, body })
      const status = answer(req, body)
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ backend: name, status }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())))
  const port = (server.address() as AddressInfo).port
  return Object.assign(server, { port, url: `http://127.0.0.1:${port}`, hits })
}

async function gateway(yaml: string, args: string[] = [], env: Record<string, string> = {}): Promise<GatewayProcess> {
  const gw = await startGatewayProcess(yaml, env, args)
  cleanup.push(() => gw.stop('SIGKILL'))
  return gw
}

function post(url: string, body: string): Promise<{ status: number; json: any; discovery: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text), discovery: res.headers['x-switchboard-discovery'] }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function rememberedInRedis(port: number): boolean {
  return execFileSync('redis-cli', ['-p', String(port), '--scan', '--pattern', 'routes:*'], { encoding: 'utf8' }).trim() !== ''
}

/** The seed's fixture with its fixed backend ports replaced by the test's. */
function fixture(name: string, ports: Record<string, number>): string {
  let text = readFileSync(join(FIXTURES, name), 'utf8')
  for (const [from, to] of Object.entries(ports)) text = text.replaceAll(`127.0.0.1:${from}`, `127.0.0.1:${to}`)
  return text
}

// These configs ask for seed 000's own rules (every method tried in order, only a 200 counts);
// the defaults of our format are safer (any 2xx ends the search, POST goes to one endpoint).
describe(`seed 000 through the built CLI on ${RUNTIME}`, () => {
  it('routes the seed example request (POST /get_log_files with the backup payload) to the second backend', async () => {
    const first = await backend('first')
    const second = await backend('second')
    const yaml = fixture('example-request.yaml', { 3000: first.port, 3100: second.port })
    const db = join(mkdtempSync(join(tmpdir(), 'sb-routes-')), 'routes.db')
    const gw = await gateway(yaml, ['--store', `sqlite:${db}`])
    const body = '{"name": "backup_log.log", "path": "d:/backup/logs"}'
    const res = await post(`${gw.url}/get_log_files`, body)
    expect(res.json).toEqual({ backend: 'second', status: 200 })
    expect(second.hits).toEqual([{ method: 'POST', url: '/get_log_files', body }])
    expect(first.hits).toHaveLength(0)
    const other = await post(`${gw.url}/get_log_files`, '{"path":"c:/logs","name":"log_file.log"}')
    expect(other.json.backend).toBe('first')
  })

  it('discovers the first backend that answers 200, remembers it, and still knows after a restart', async () => {
    const a = await backend('a', () => 404)
    const b = await backend('b')
    const c = await backend('c')
    const dir = mkdtempSync(join(tmpdir(), 'sb-routes-'))
    const yaml = `discovery:\n  endpoints: [${a.url}, ${b.url}, ${c.url}]\n  replay: all\n  successStatuses: [200]\n  remember: { ttl: 10m }\n  store: { driver: sqlite, path: ${join(dir, 'routes.db')} }\nserver: { shutdownTimeout: 2s }\n`
    const gw1 = await gateway(yaml)
    const first = await post(`${gw1.url}/unrouted?x=1`, '{"k":1}')
    expect([first.status, first.json.backend, first.discovery]).toEqual([200, 'b', 'probe'])
    expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 1, 0])
    expect(await gw1.stop('SIGTERM')).not.toBe(1)

    const gw2 = await gateway(yaml)
    const again = await post(`${gw2.url}/unrouted?x=1`, '{ "k": 1 }') // same JSON, other spacing
    expect([again.json.backend, again.discovery]).toEqual(['b', 'hit'])
    // Remembered: nobody was probed this time.
    expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 2, 0])
    await gw2.stop('SIGTERM')

    // --clear-routes forgets them at start: probing again.
    const gw3 = await gateway(yaml, ['--clear-routes'])
    const cleared = await post(`${gw3.url}/unrouted?x=1`, '{"k":1}')
    expect(cleared.discovery).toBe('probe')
    expect(a.hits.length).toBe(2)
  })

  it('forgets a remembered route when its backend starts failing', async () => {
    let bFails = false
    const a = await backend('a', () => 404)
    const b = await backend('b', () => (bFails ? 500 : 200))
    const c = await backend('c')
    const db = join(mkdtempSync(join(tmpdir(), 'sb-routes-')), 'routes.db')
    const gw = await gateway(`discovery:\n  endpoints: [${a.url}, ${b.url}, ${c.url}]\n  replay: all\n  successStatuses: [200]\n  store: { driver: sqlite, path: ${db} }\n`)
    expect((await post(`${gw.url}/job`, '{}')).json.backend).toBe('b')
    bFails = true
    expect((await post(`${gw.url}/job`, '{}')).json.backend).toBe('c')
    expect((await post(`${gw.url}/job`, '{}')).discovery).toBe('hit')
  })

  it('answers with the last backend when none says 200', async () => {
    const a = await backend('a', () => 404)
    const b = await backend('b', () => 503)
    const db = join(mkdtempSync(join(tmpdir(), 'sb-routes-')), 'routes.db')
    const gw = await gateway(`discovery:\n  endpoints: [${a.url}, ${b.url}]\n  replay: all\n  successStatuses: [200]\n  store: { driver: sqlite, path: ${db} }\n`)
    const res = await post(`${gw.url}/nothing`, '{}')
    expect([res.status, res.json.backend]).toEqual([503, 'b'])
  })

  it('converts the seed config with `import` and the result runs as our format', async () => {
    const file = join(FIXTURES, 'quick-start.yaml')
    const { code, output } = await runCli(['import', file])
    expect(code).toBe(0)
    expect(output).toContain('discovery:')
    expect(output).toContain('/get_log_files')
    const converted = tempFile('converted.yaml', output)
    const check = await runCli(['check', '--config', converted])
    expect(check.code).toBe(0)
    expect(check.output).toContain('ok')
  })
})

describe(`remembered routes shared through Redis on ${RUNTIME}`, () => {
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('a route discovered by one instance is used by the other without probing', async () => {
    const a = await backend('a', () => 404)
    const b = await backend('b')
    const yaml = `discovery:\n  endpoints: [${a.url}, ${b.url}]\n  replay: all\n  successStatuses: [200]\n`
    const gw1 = await gateway(yaml, ['--store', redis!.url])
    const gw2 = await gateway(yaml, ['--store', redis!.url])
    expect((await post(`${gw1.url}/shared`, '{"n":1}')).discovery).toBe('probe')
    // The route is written next to the response, not before it: wait until Redis has it.
    for (let i = 0; i < 100 && !rememberedInRedis(redis!.port); i++) await new Promise((r) => setTimeout(r, 20))
    const second = await post(`${gw2.url}/shared`, '{"n":1}')
    expect([second.discovery, second.json.backend]).toEqual(['hit', 'b'])
    expect(a.hits).toHaveLength(1)
  })
})
