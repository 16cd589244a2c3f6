// End-to-end: a plugin file next to the config, loaded by the *built* CLI on the runtime running
// this file. The plugin registers a balancer (`always-last`), a policy type (`stamp`) and every
// lifecycle hook; each hook appends one line to the file named by $HOOK_LOG, so the test can check
// what ran and in which order: startup, request/(error)/response per request, reload, shutdown.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CLI, freePort, RUNTIME, runtimeCommand } from './harness.ts'

const PLUGIN = `// Written by plugins-cli.test.ts
import { appendFileSync } from 'node:fs'
import process from 'node:process'

const log = (line) => appendFileSync(process.env.HOOK_LOG, 'HOOK ' + line + '\\n')

export default {
  name: 'test-hooks',
  setup(api) {
    api.registerBalancer('always-last', () => ({ name: 'always-last', pick: (candidates) => candidates.at(-1) }))
    api.registerPolicy({
      name: 'stamp',
      parse(raw, at) {
        for (const key of Object.keys(raw)) if (key !== 'value') throw new Error(at + '.' + key + ' is not an option of stamp')
        if (typeof raw.value !== 'string' || raw.value === '') throw new Error(at + '.value must be a non-empty string')
        return { value: raw.value }
      },
      create(options) {
        return async function stamp(ex, next) {
          ex.onResponseHead((_status, headers) => {
            headers['x-stamp'] = options.value
          })
          await next()
        }
      },
    })
    api.hooks({
      startup: () => log('startup'),
      request: (ex) => log('request ' + ex.request.method + ' ' + ex.request.path),
      response: (ex) => log('response ' + (ex.response ? ex.response.status : '-') + ' ' + ex.request.path),
      error: (err, ex) => log('error ' + (err && err.status) + ' ' + ex.request.path),
      reload: () => log('reload'),
      shutdown: () => log('shutdown'),
    })
  },
}
`

function configYaml(ports: { a: number; b: number; dead: number }, stamp: string): string {
  return `plugins:
  - ./test-hooks.mjs
server:
  host: 127.0.0.1
  shutdownTimeout: 5s
  policies: [stamp]
policies:
  stamp:
    use: stamp
    value: ${stamp}
upstreams:
  pair:
    balancer: always-last
    targets:
      - url: http://127.0.0.1:${ports.a}
      - url: http://127.0.0.1:${ports.b}
    timeouts: { connect: 2s, response: 5s }
  dead:
    targets:
      - url: http://127.0.0.1:${ports.dead}
    timeouts: { connect: 2s, response: 5s }
routes:
  - name: dead
    match: { path: /dead/* }
    upstream: dead
  - name: api
    match: { path: /api/* }
    upstream: pair
`
}

const cleanup: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

async function upstream(name: string): Promise<Server & { port: number }> {
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ name }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.()
        server.close(() => r())
      }),
  )
  return Object.assign(server, { port: (server.address() as AddressInfo).port })
}

/** A port nothing listens on (taken, then released). */
async function deadPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

/** Polls `ok` every 25 ms for at most `ms`; throws with `what` (and the output) when it never holds. */
async function waitFor(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

interface Started {
  child: ChildProcess
  url: string
  file: string
  hookLog: string
  output(): string
  hooks(): string[]
  exited: Promise<number | null>
}

async function startWithPlugin(ports: { a: number; b: number; dead: number }): Promise<Started> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build the switchboard CLI (apps/gateway) first`)
  const dir = mkdtempSync(join(tmpdir(), 'sb-plugin-'))
  const file = join(dir, 'gateway.yaml')
  const hookLog = join(dir, 'hooks.log')
  writeFileSync(join(dir, 'test-hooks.mjs'), PLUGIN)
  writeFileSync(file, configYaml(ports, 'v1'))
  writeFileSync(hookLog, '')
  const port = await freePort()
  const [cmd, args] = runtimeCommand(CLI, ['--config', file])
  const child = spawn(cmd, args, { env: { ...process.env, PORT: String(port), HOOK_LOG: hookLog }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) signal(child, 'SIGKILL')
  })
  try {
    await waitFor(() => out.includes('listening on') || child.exitCode !== null, 'the gateway to listen', 20_000)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${out}`)
  }
  if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${out}`)
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    file,
    hookLog,
    exited,
    output: () => out,
    hooks: () => readFileSync(hookLog, 'utf8').split('\n').filter(Boolean),
  }
}

/**
 * Sends a signal by pid. Deno 2.9.6's node:child_process `ChildProcess.kill()` delivers only the
 * first signal of a child's life (later calls return false, checked by hand), so `child.kill('SIGHUP')`
 * followed by `child.kill('SIGTERM')` would never stop the gateway there.
 */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    process.kill(child.pid!, name)
  } catch {
    // already gone
  }
}

/** Runs `switchboard check --config file` on this runtime; resolves with its exit code and output. */
async function checkConfig(file: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, args] = runtimeCommand(CLI, ['check', '--config', file])
  const child = spawn(cmd, args, { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)))
  return { code, stdout, stderr }
}

describe(`plugins through the built CLI on ${RUNTIME}`, () => {
  it('loads a plugin next to the config: balancer, policy type and every hook, in order', async () => {
    const a = await upstream('a')
    const b = await upstream('b')
    const ports = { a: a.port, b: b.port, dead: await deadPort() }
    const gw = await startWithPlugin(ports)
    const expected: string[] = ['HOOK startup']
    expect(gw.hooks(), gw.output()).toEqual(expected)

    /** One request; waits until its response hook ran, so the hook log order is deterministic. */
    const get = async (path: string): Promise<{ status: number; stamp: string | null; body: string }> => {
      const res = await fetch(`${gw.url}${path}`)
      const body = await res.text()
      await waitFor(() => gw.hooks().includes(`HOOK response ${res.status} ${path}`), `the response hook of ${path}\n${gw.output()}`)
      return { status: res.status, stamp: res.headers.get('x-stamp'), body }
    }

    // The plugin's balancer: every request goes to the last target.
    const names: string[] = []
    for (let i = 0; i < 6; i++) {
      const r = await get(`/api/${i}`)
      expect(r.status).toBe(200)
      expect(r.stamp).toBe('v1')
      names.push(JSON.parse(r.body).name)
      expected.push(`HOOK request GET /api/${i}`, `HOOK response 200 /api/${i}`)
    }
    expect(names).toEqual(['b', 'b', 'b', 'b', 'b', 'b'])

    // The plugin's policy as a server policy decorates the gateway's own errors too.
    const notFound = await get('/nowhere')
    expect([notFound.status, notFound.stamp]).toEqual([404, 'v1'])
    expected.push('HOOK request GET /nowhere', 'HOOK error 404 /nowhere', 'HOOK response 404 /nowhere')
    const badGateway = await get('/dead/x')
    expect([badGateway.status, badGateway.stamp]).toEqual([502, 'v1'])
    expected.push('HOOK request GET /dead/x', 'HOOK error 502 /dead/x', 'HOOK response 502 /dead/x')
    expect(gw.hooks()).toEqual(expected)

    // SIGHUP re-reads the file (and the plugin): the new stamp value serves the next request.
    writeFileSync(gw.file, configYaml(ports, 'v2'))
    signal(gw.child, 'SIGHUP')
    await waitFor(() => gw.hooks().includes('HOOK reload'), `the reload hook\n${gw.output()}`)
    expected.push('HOOK reload')
    const after = await get('/api/after')
    expect([after.status, after.stamp, JSON.parse(after.body).name]).toEqual([200, 'v2', 'b'])
    expected.push('HOOK request GET /api/after', 'HOOK response 200 /api/after')

    // SIGTERM: shutdown hook last, exit 0.
    signal(gw.child, 'SIGTERM')
    const timer = setTimeout(() => signal(gw.child, 'SIGKILL'), 10_000)
    const code = await gw.exited
    clearTimeout(timer)
    expected.push('HOOK shutdown')
    expect(gw.hooks(), gw.output()).toEqual(expected)
    expect(code, gw.output()).toBe(0)
  }, 60_000)

  it('check loads the plugin and accepts the config that uses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-plugin-'))
    const file = join(dir, 'gateway.yaml')
    writeFileSync(join(dir, 'test-hooks.mjs'), PLUGIN)
    writeFileSync(file, configYaml({ a: 1, b: 2, dead: 3 }, 'v1'))
    const { code, stdout, stderr } = await checkConfig(file, { HOOK_LOG: join(dir, 'hooks.log') })
    const out = stdout + stderr
    expect(code, out).toBe(0)
    expect(out).toContain(`${file}: ok (2 routes, 2 upstreams, 1 plugins)`)
    // check never starts the gateway, so no hook ran.
    expect(existsSync(join(dir, 'hooks.log'))).toBe(false)
  }, 30_000)

  it('refuses a bad option of the plugin policy type, naming the policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-plugin-'))
    const file = join(dir, 'gateway.yaml')
    writeFileSync(join(dir, 'test-hooks.mjs'), PLUGIN)
    writeFileSync(file, configYaml({ a: 1, b: 2, dead: 3 }, 'v1').replace('    value: v1', '    valeu: v1'))
    const { code, stderr: err } = await checkConfig(file)
    expect(code, err).toBe(2)
    expect(err).toContain(`switchboard: invalid config: ${file}: policies.stamp`)
    expect(err).toContain('valeu')
  }, 30_000)

  it('loads a plugin named by its package name: an ESM-only package in node_modules beside the config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-plugin-'))
    const file = join(dir, 'gateway.yaml')
    // `exports` with only an `import` entry, as ESM-only packages ship: require.resolve cannot find it.
    const pkg = join(dir, 'node_modules', '@acme', 'switchboard-test-hooks')
    mkdirSync(join(pkg, 'dist'), { recursive: true })
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@acme/switchboard-test-hooks', type: 'module', exports: { '.': { import: './dist/index.js' } } }))
    writeFileSync(join(pkg, 'dist', 'index.js'), PLUGIN)
    // YAML: a scoped name starts with @, so it is quoted.
    writeFileSync(file, configYaml({ a: 1, b: 2, dead: 3 }, 'v1').replace('./test-hooks.mjs', '"@acme/switchboard-test-hooks"'))
    const check = async (config: string): Promise<{ code: number | null; out: string }> => {
      const { code, stdout, stderr } = await checkConfig(config)
      return { code, out: stdout + stderr }
    }
    // The plugin's balancer and policy type are what make this config valid.
    const good = await check(file)
    expect(good.code, good.out).toBe(0)
    expect(good.out).toContain(`${file}: ok (2 routes, 2 upstreams, 1 plugins)`)
    // A package that is not installed: refused, naming the key and the package.
    const missing = join(dir, 'missing.yaml')
    writeFileSync(missing, configYaml({ a: 1, b: 2, dead: 3 }, 'v1').replace('./test-hooks.mjs', '"@acme/not-installed"'))
    const bad = await check(missing)
    expect(bad.code, bad.out).toBe(2)
    expect(bad.out).toContain(`switchboard: invalid config: ${missing}: plugins[0]`)
    expect(bad.out).toContain("package '@acme/not-installed' is not installed")
  }, 30_000)
})
