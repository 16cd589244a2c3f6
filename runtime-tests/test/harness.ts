import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** Which runtime runs this test file (and therefore the gateway it spawns). */
export const RUNTIME: 'bun' | 'deno' | 'node' =
  typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'
    ? 'bun'
    : typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
      ? 'deno'
      : 'node'

export const ROOT = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..')
export const CLI = join(ROOT, 'apps/gateway/dist/cli.js')

/** The command that runs a script under the same runtime as this test. */
export function runtimeCommand(script: string, args: string[]): [string, string[]] {
  if (RUNTIME === 'deno') return [process.execPath, ['run', '-A', script, ...args]]
  return [process.execPath, [script, ...args]]
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** A gateway process started from the built CLI. */
export interface GatewayProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  output(): string
  /** Resident set size (KiB) and its high-water mark, from /proc. */
  memory(): { rssKiB: number; hwmKiB: number }
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Writes `yaml` to a temp file and starts the CLI on it; resolves once the gateway listens. */
export async function startGatewayProcess(yaml: string, env: Record<string, string> = {}, extraArgs: string[] = []): Promise<GatewayProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build (scripts/setup.sh) first`)
  const dir = mkdtempSync(join(tmpdir(), 'sb-rt-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, yaml)
  const port = Number(env.PORT ?? (await freePort()))
  const [cmd, args] = runtimeCommand(CLI, ['--config', file, ...extraArgs])
  const child = spawn(cmd, args, { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const deadline = Date.now() + 20_000
  while (!out.includes('listening on')) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${out}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`gateway did not start:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      const get = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
      return { rssKiB: get('VmRSS'), hwmKiB: get('VmHWM') }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** Runs the CLI to completion (for bad-config cases). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const [cmd, fullArgs] = runtimeCommand(CLI, args)
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, fullArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolvePromise({ code, output })
    })
  })
}

/** Writes a temp file and returns its path. */
export function tempFile(name: string, content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sb-rt-')), name)
  writeFileSync(file, content)
  return file
}

/** The contract config (PRODUCT.md) pointed at the given upstream ports. */
export function contractYaml(ports: number[], extra = ''): string {
  return `server:
  host: 127.0.0.1
  port: 8080
  limits:
    maxHeaderBytes: 16kb
    headersTimeout: 10s
    bodyIdleTimeout: 30s
  shutdownTimeout: 5s
upstreams:
  backend:
    balancer: round-robin
    targets:
${ports.map((p, i) => `      - url: http://127.0.0.1:${p}\n        weight: ${i + 1}`).join('\n')}
    timeouts:
      connect: 2s
      response: 2s
      idle: 60s
${extra}routes:
  - name: api
    match: { path: /api/* }
    upstream: backend
  - name: everything-else
    match: { path: /* }
    upstream: backend
`
}
