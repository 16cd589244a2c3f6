// End-to-end: seed 004's (python-api-router) config.yaml and .env run as they are through the
// *built* gateway CLI, on the runtime running this file. The config sits in a temp folder with its
// .env; the gateway starts from a different working directory (whose own .env holds a wrong key),
// in front of a fake provider on 127.0.0.1 that streams SSE and records what it was sent.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, freePort, RUNTIME, runtimeCommand } from './harness.ts'

// The seed README's config.yaml, verbatim; the test only swaps baseUrl and appends a second target
// and client (a provider that never answers, behind a 1 s client timeout).
const SEED_CONFIG = `# 1) Where can the proxy forward to?
targets:
  openrouter:
    baseUrl: https://openrouter.ai/api/v1
    defaultHeaders:
      Content-Type: "application/json; charset=utf-8"

# 2) Secret keys (resolved from env vars)
secrets:
  or_rk1: "Bearer \${OPENROUTER_KEY_RK1}"

# 3) Who can use the proxy, and what can they do?
clients:
  rk-robot-1:
    target: openrouter
    authHeaderRef: or_rk1
    allowedMethods: [POST]
    allowedPaths:
      - /chat/completions
    timeoutMs: 60000
`
/** The built CLI; SWITCHBOARD_CLI runs the same checks against another build of it. */
const GATEWAY_CLI = process.env.SWITCHBOARD_CLI ?? CLI
const SECRET = `sk-secret-${randomBytes(12).toString('hex')}`
const WRONG_SECRET = `sk-wrong-cwd-${randomBytes(6).toString('hex')}`
const CLIENT_KEY = 'rk-robot-1'
/** Events the provider sends before it waits for the client to have seen the first one. */
const EARLY_EVENTS = 3

/** The README's curl example body. */
const CURL_ENVELOPE = {
  method: 'POST',
  path: '/chat/completions',
  body: { model: 'anthropic/claude-opus-4-5', messages: [{ role: 'user', content: 'Hello!' }] },
}

interface ProviderStream {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
  /** True once the last event (and [DONE]) was written. */
  lastSent: boolean
  /** Who let the last event go: the test (it saw the first event) or the safety timer. */
  releasedBy: 'client' | 'fallback' | undefined
  release(): void
}

interface Provider {
  server: Server
  port: number
  streams: ProviderStream[]
}

/** Answers `/api/v1/chat/completions` with SSE: a few events 50 ms apart, then waits for release() before the last one and [DONE]. */
async function fakeProvider(): Promise<Provider> {
  const streams: ProviderStream[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let release!: () => void
      const released = new Promise<void>((r) => (release = r))
      const s: ProviderStream = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        lastSent: false,
        releasedBy: undefined,
        release: () => {
          s.releasedBy ??= 'client'
          release()
        },
      }
      streams.push(s)
      if (req.url !== '/api/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not here"}')
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      void (async () => {
        for (let i = 0; i < EARLY_EVENTS; i++) {
          res.write(`data: {"n":${i}}\n\n`)
          await sleep(50)
        }
        // Safety net only, so a buffering gateway fails the assertion instead of hanging the file.
        const fallback = setTimeout(() => {
          s.releasedBy ??= 'fallback'
          release()
        }, 10_000)
        await released
        clearTimeout(fallback)
        res.write(`data: {"n":${EARLY_EVENTS}}\n\n`)
        res.write('data: [DONE]\n\n')
        s.lastSent = true
        res.end()
      })()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as AddressInfo).port, streams }
}

/** Accepts requests and never answers. */
async function stalledProvider(): Promise<{ server: Server; port: number; hits: number }> {
  const out = { server: createServer(() => (out.hits += 1)), port: 0, hits: 0 }
  await new Promise<void>((r) => out.server.listen(0, '127.0.0.1', r))
  out.port = (out.server.address() as AddressInfo).port
  return out
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => {
    server.closeAllConnections?.()
    server.close(() => r())
  })
}

/** The child environment: ours, minus any real OPENROUTER_KEY_RK1, so only a .env can supply it. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'OPENROUTER_KEY_RK1') env[k] = v
  return { ...env, ...extra }
}

/**
 * The harness's command, except that Bun is told not to load the working directory's `.env` into
 * the environment itself (which it does by default, and then those variables win over the `.env`
 * beside the config like any set variable): `bun --no-env-file`.
 */
function cliCommand(args: string[]): [string, string[]] {
  const [cmd, fullArgs] = runtimeCommand(GATEWAY_CLI, args)
  return RUNTIME === 'bun' ? [cmd, ['--no-env-file', ...fullArgs]] : [cmd, fullArgs]
}

/** Runs the CLI to completion from `cwd`. */
function runCliIn(cwd: string, args: string[]): Promise<{ code: number | null; stdout: string; output: string }> {
  const [cmd, fullArgs] = cliCommand(args)
  return new Promise((resolve) => {
    const child = spawn(cmd, fullArgs, { cwd, env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let output = ''
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString()
      output += c.toString()
    })
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, output })
    })
  })
}

const tempDir = (prefix: string): string => realpathSync(mkdtempSync(join(tmpdir(), prefix)))

describe(`seed 004 config through the built CLI on ${RUNTIME}`, () => {
  let provider: Provider
  let stalled: Awaited<ReturnType<typeof stalledProvider>>
  let dir: string
  let elsewhere: string
  let configFile: string
  let child: ChildProcess
  let url: string
  let output = ''
  /** Every response body the gateway sent, for the final secret check. */
  const bodies: string[] = []

  /** POST with `Authorization: Bearer KEY` (none when `key` is null). */
  const post = async (path: string, body: unknown, key: string | null = CLIENT_KEY): Promise<Response> => {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
    if (key !== null) headers.authorization = `Bearer ${key}`
    return fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(25_000) })
  }
  const text = async (res: Response): Promise<string> => {
    const t = await res.text()
    bodies.push(t)
    return t
  }

  /** Reads an SSE body event by event; releases the provider's last event once the first has arrived. */
  async function readSse(res: Response, stream: ProviderStream): Promise<{ events: string[]; lastSentAtFirstEvent: boolean | undefined }> {
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    let all = ''
    const events: string[] = []
    let lastSentAtFirstEvent: boolean | undefined
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      const chunk = decoder.decode(value, { stream: true })
      buffer += chunk
      all += chunk
      let end: number
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        events.push(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
        if (events.length === 1) {
          lastSentAtFirstEvent = stream.lastSent
          stream.release()
        }
      }
    }
    bodies.push(all)
    return { events, lastSentAtFirstEvent }
  }

  beforeAll(async () => {
    if (!existsSync(GATEWAY_CLI)) throw new Error(`${GATEWAY_CLI} is missing: run the build (scripts/setup.sh) first`)
    provider = await fakeProvider()
    stalled = await stalledProvider()
    dir = tempDir('sb-seed004-')
    elsewhere = tempDir('sb-seed004-cwd-')
    const config = SEED_CONFIG.replace('https://openrouter.ai/api/v1', `http://127.0.0.1:${provider.port}/api/v1`).replace(
      '\n# 2) Secret keys',
      `  stalled:\n    baseUrl: http://127.0.0.1:${stalled.port}/v1\n\n# 2) Secret keys`,
    )
    configFile = join(dir, 'config.yaml')
    writeFileSync(
      configFile,
      `${config}  rk-robot-slow:\n    target: stalled\n    authHeaderRef: or_rk1\n    allowedMethods: [POST]\n    allowedPaths: [/chat/completions]\n    timeoutMs: 1000\n`,
    )
    writeFileSync(join(dir, '.env'), `# upstream keys (never committed)\nOPENROUTER_KEY_RK1=${SECRET}\n`)
    // A .env in the working directory must not be the one read.
    writeFileSync(join(elsewhere, '.env'), `OPENROUTER_KEY_RK1=${WRONG_SECRET}\n`)
    const port = await freePort()
    const [cmd, args] = cliCommand(['--config', configFile])
    child = spawn(cmd, args, { cwd: elsewhere, env: childEnv({ PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
    url = `http://127.0.0.1:${port}`
    for (let i = 0; !output.includes('listening on'); i++) {
      if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${output}`)
      if (i > 800) throw new Error(`gateway did not start:\n${output}`)
      await sleep(25)
    }
  })

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
    }
    for (const s of provider.streams) s.release()
    await Promise.all([provider && closeServer(provider.server), stalled && closeServer(stalled.server)])
  })

  it("the README's curl example: 200, SSE events one by one, the secret injected upstream", async () => {
    const res = await post('/proxy', CURL_ENVELOPE)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const stream = provider.streams.at(-1)!
    const { events, lastSentAtFirstEvent } = await readSse(res, stream)
    // The first event reached us while the provider still held the last one back.
    expect(lastSentAtFirstEvent).toBe(false)
    expect(stream.releasedBy).toBe('client')
    expect(events).toEqual(['data: {"n":0}', 'data: {"n":1}', 'data: {"n":2}', 'data: {"n":3}', 'data: [DONE]'])
    expect(stream.method).toBe('POST')
    expect(stream.url).toBe('/api/v1/chat/completions')
    expect(stream.headers.authorization).toBe(`Bearer ${SECRET}`)
    expect(JSON.stringify(stream.headers)).not.toContain(CLIENT_KEY)
    expect(JSON.stringify(stream.headers)).not.toContain(WRONG_SECRET)
    expect(JSON.parse(stream.body)).toEqual(CURL_ENVELOPE.body)
  })

  it("the target's defaultHeaders reach the provider (Content-Type from the seed's config)", async () => {
    const res = await post('/proxy', CURL_ENVELOPE)
    expect(res.status).toBe(200)
    await readSse(res, provider.streams.at(-1)!)
    expect(provider.streams.at(-1)!.headers['content-type']).toBe('application/json; charset=utf-8')
  })

  it('passthrough: POST /chat/completions on the gateway with the client key', async () => {
    const before = provider.streams.length
    const res = await post('/chat/completions', { model: 'm', messages: [], stream: true })
    expect(res.status).toBe(200)
    const stream = provider.streams.at(-1)!
    expect(provider.streams.length).toBe(before + 1)
    const { events } = await readSse(res, stream)
    expect(events.at(-1)).toBe('data: [DONE]')
    expect(stream.url).toBe('/api/v1/chat/completions')
    expect(stream.headers.authorization).toBe(`Bearer ${SECRET}`)
    expect(JSON.stringify(stream.headers)).not.toContain(CLIENT_KEY)
  })

  it('a wrong or missing key: 401 with WWW-Authenticate, nothing forwarded', async () => {
    const before = provider.streams.length
    for (const key of ['rk-robot-2', 'rk-robot-1x', null]) {
      const res = await post('/proxy', CURL_ENVELOPE, key)
      await text(res)
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/i)
    }
    const passthrough = await post('/chat/completions', CURL_ENVELOPE.body, 'rk-robot-2')
    await text(passthrough)
    expect(passthrough.status).toBe(401)
    expect(provider.streams.length).toBe(before)
  })

  it('GET in the envelope (allowedMethods [POST]) and path /models: 403, nothing forwarded', async () => {
    const before = provider.streams.length
    const get = await post('/proxy', { method: 'GET', path: '/chat/completions' })
    await text(get)
    expect(get.status).toBe(403)
    const models = await post('/proxy', { method: 'POST', path: '/models', body: {} })
    await text(models)
    expect(models.status).toBe(403)
    expect(provider.streams.length).toBe(before)
  })

  it('a provider that never answers, behind the second client (timeoutMs: 1000): 504', async () => {
    const res = await post('/proxy', CURL_ENVELOPE, 'rk-robot-slow')
    await text(res)
    // Bounded by the fetch signal (25 s), far below the target's own 120 s response timeout.
    expect(res.status).toBe(504)
    expect(stalled.hits).toBe(1)
  })

  it('/health and /docs answer 200', async () => {
    const health = await fetch(`${url}/health`)
    await text(health)
    expect(health.status).toBe(200)
    const docs = await fetch(`${url}/docs`)
    const page = await text(docs)
    expect(docs.status).toBe(200)
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/)
    expect(page.length).toBeGreaterThan(0)
  })

  it('the secret appears in no log line and no response body', () => {
    expect(bodies.length).toBeGreaterThanOrEqual(8)
    expect(output).toContain('listening on')
    expect(output).not.toContain(SECRET)
    for (const body of bodies) expect(body).not.toContain(SECRET)
  })
})

describe(`seed 004 CLI commands on ${RUNTIME}`, () => {
  it('check finds the .env beside the config from another cwd; --env-file replaces it', async () => {
    const dir = tempDir('sb-seed004-check-')
    const elsewhere = tempDir('sb-seed004-cwd-')
    writeFileSync(join(dir, 'config.yaml'), SEED_CONFIG)
    const missing = await runCliIn(elsewhere, ['check', '--config', join(dir, 'config.yaml')])
    expect(missing.code).toBe(2)
    expect(missing.output).toContain('secrets.or_rk1')
    expect(missing.output).toContain('OPENROUTER_KEY_RK1')

    writeFileSync(join(dir, '.env'), `OPENROUTER_KEY_RK1=${SECRET}\n`)
    const ok = await runCliIn(elsewhere, ['check', '--config', join(dir, 'config.yaml')])
    expect([ok.code, ok.output]).toEqual([0, expect.stringContaining(': ok')])

    writeFileSync(join(elsewhere, 'bad.env'), 'GOOD=1\nthis is not a variable\n')
    const bad = await runCliIn(elsewhere, ['check', '--config', join(dir, 'config.yaml'), '--env-file', 'bad.env'])
    expect(bad.code).toBe(2)
    expect(bad.output).toContain('bad.env:2:')
    const absent = await runCliIn(elsewhere, ['check', '--config', join(dir, 'config.yaml'), '--env-file', 'absent.env'])
    // Node itself looks for a `--env-file` file anywhere in argv and exits 9 before the script runs
    // when it is missing (nodejs/node#54232); Bun and Deno leave it to us.
    expect(absent.code).toBe(RUNTIME === 'node' ? 9 : 2)
    expect(absent.output).toContain('absent.env')
    expect(`${missing.output}${ok.output}${bad.output}${absent.output}`).not.toContain(SECRET)
  })

  it('import prints our YAML with a header, ${ENV} kept, and the result checks', async () => {
    const dir = tempDir('sb-seed004-import-')
    writeFileSync(join(dir, 'config.yaml'), SEED_CONFIG)
    writeFileSync(join(dir, '.env'), `OPENROUTER_KEY_RK1=${SECRET}\n`)
    const imported = await runCliIn(dir, ['import', 'config.yaml'])
    expect(imported.code).toBe(0)
    expect(imported.stdout.split('\n')[0]).toBe('# Imported from config.yaml (python-api-router format) by @switchboard/gateway.')
    expect(imported.stdout).toContain('port: 8787')
    expect(imported.stdout).toContain('${OPENROUTER_KEY_RK1}')
    expect(imported.stdout).not.toContain(SECRET)
    writeFileSync(join(dir, 'switchboard.yaml'), imported.stdout)
    const check = await runCliIn(tempDir('sb-seed004-cwd-'), ['check', '--config', join(dir, 'switchboard.yaml'), '--format', 'switchboard'])
    expect([check.code, check.output]).toEqual([0, expect.stringContaining(': ok')])
  })
})
