// A corpus of bad configs, each refused by the *built* CLI twice: by `check --config F` and by a
// plain start (`--config F`, no command), on the runtime running this file. Both must exit 2 with
// `switchboard: invalid config: FILE: KEY.PATH: expected …`, print no stack trace, and the start
// must never get as far as listening. Every case is a small edit of BASE, which the first tests
// prove is accepted, so each refusal is caused by the edit alone.
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CLI, ROOT, RUNTIME, runtimeCommand } from './harness.ts'

const PLUGIN_FIXTURES = join(ROOT, 'runtime-tests/fixtures/plugins')

/** Pieces of a config; each string is YAML lines written without indentation and indented here. */
interface Parts {
  /** Root-level lines appended at the end (`policies:`, `store:`, `plugins:` …). */
  top?: string
  /** Lines under `server:` (besides `host`). */
  server?: string
  /** Lines under `upstreams.backend` (besides `targets`). */
  upstream?: string
  /** The list under `upstreams.backend.targets`. */
  targets?: string
  /** Lines under `routes[0].match`. @default 'path: /*' */
  match?: string
  /** Lines under `routes[0]` (besides `name`, `match`, `upstream`). */
  route?: string
  /** `routes[0].upstream`. @default 'backend' */
  routeUpstream?: string
  /** Replaces the whole list under `routes:`. */
  routes?: string
}

const indent = (text: string | undefined, n: number): string =>
  text === undefined ? '' : `${text.split('\n').map((line) => (line ? ' '.repeat(n) + line : line)).join('\n')}\n`

function config(p: Parts = {}): string {
  const routes =
    p.routes ??
    `- name: all
  match:
${indent(p.match ?? 'path: /*', 4)}  upstream: ${p.routeUpstream ?? 'backend'}
${indent(p.route, 2)}`
  return `server:
  host: 127.0.0.1
${indent(p.server, 2)}upstreams:
  backend:
${indent(p.upstream, 4)}    targets:
${indent(p.targets ?? '- url: http://127.0.0.1:9', 6)}routes:
${indent(routes, 2)}${p.top ?? ''}
`
}

const BASE = config()

interface BadCase {
  name: string
  yaml: string
  /** The key path the error must name, exactly as printed (`(root)` for the whole document). */
  path: string
  /** Environment for both commands. @default { PORT: '0' } */
  env?: Record<string, string>
  /** Files from fixtures/plugins copied next to the config. */
  plugins?: string[]
  /** More the error text must contain (e.g. the YAML line). */
  also?: RegExp
}

const DUP_ROUTES = `- name: all
  match: { path: /a/* }
  upstream: backend
- name: all
  match: { path: /b/* }
  upstream: backend`

const YAML_SYNTAX = BASE.replace('match:\n      path: /*', 'match: { path: /*')
const YAML_DUP_KEY = BASE.replace('    targets:\n', '    targets: [http://127.0.0.1:8]\n    targets:\n')
const lineOf = (text: string, needle: string, nth = 0): number => {
  let at = -1
  for (let i = 0; i <= nth; i++) at = text.indexOf(needle, at + 1)
  return text.slice(0, at).split('\n').length
}

const CASES: BadCase[] = [
  // root
  { name: 'unknown root key', yaml: config({ top: 'bogus: 1' }), path: 'bogus' },
  {
    name: 'upstreams empty',
    yaml: 'upstreams: {}\nroutes:\n  - name: all\n    match: { path: /* }\n    upstream: backend\n',
    path: 'upstreams',
  },
  // upstreams
  { name: 'target URL not http', yaml: config({ targets: '- url: ftp://127.0.0.1:21' }), path: 'upstreams.backend.targets[0].url' },
  { name: 'target URL with a query', yaml: config({ targets: '- url: http://127.0.0.1:9/x?debug=1' }), path: 'upstreams.backend.targets[0].url' },
  { name: 'negative weight', yaml: config({ targets: '- url: http://127.0.0.1:9\n  weight: -1' }), path: 'upstreams.backend.targets[0].weight' },
  {
    name: 'duplicate target URL in one upstream',
    yaml: config({ targets: '- url: http://127.0.0.1:9\n- url: http://127.0.0.1:9' }),
    path: 'upstreams.backend.targets[1].url',
  },
  { name: 'unknown balancer', yaml: config({ upstream: 'balancer: fastest-ever' }), path: 'upstreams.backend.balancer' },
  {
    name: 'consistent-hash with a bad key',
    yaml: config({ upstream: 'balancer:\n  strategy: consistent-hash\n  options:\n    key: { bogus: x-user }' }),
    path: 'upstreams.backend.balancer.options.key',
  },
  { name: 'timeout not a duration', yaml: config({ upstream: 'timeouts:\n  connect: soon' }), path: 'upstreams.backend.timeouts.connect' },
  {
    name: 'outlierDetection.failureRate: 0',
    yaml: config({ upstream: 'outlierDetection:\n  failureRate: 0' }),
    path: 'upstreams.backend.outlierDetection.failureRate',
  },
  {
    name: 'maxEjectionTime < baseEjectionTime',
    yaml: config({ upstream: 'outlierDetection:\n  baseEjectionTime: 60s\n  maxEjectionTime: 10s' }),
    path: 'upstreams.backend.outlierDetection.maxEjectionTime',
  },
  { name: 'healthCheck.path without /', yaml: config({ upstream: 'healthCheck:\n  path: health' }), path: 'upstreams.backend.healthCheck.path' },
  // routes: upstream references (prototype names must not resolve to Object.prototype members)
  { name: 'route upstream constructor', yaml: config({ routeUpstream: 'constructor' }), path: 'routes[0].upstream' },
  { name: 'route upstream __proto__', yaml: config({ routeUpstream: '__proto__' }), path: 'routes[0].upstream' },
  { name: 'route upstream toString', yaml: config({ routeUpstream: 'toString' }), path: 'routes[0].upstream' },
  { name: 'unknown route upstream', yaml: config({ routeUpstream: 'nowhere' }), path: 'routes[0].upstream' },
  { name: 'duplicate route names', yaml: config({ routes: DUP_ROUTES }), path: 'routes[1].name' },
  // routes: patterns
  { name: 'path not starting with /', yaml: config({ match: 'path: api/*' }), path: 'routes[0].match.path' },
  { name: 'path with a repeated parameter', yaml: config({ match: 'path: /users/:id/:id' }), path: 'routes[0].match.path' },
  { name: 'path with a wildcard in the middle', yaml: config({ match: 'path: /a/*/b' }), path: 'routes[0].match.path' },
  { name: 'path with an empty parameter name', yaml: config({ match: 'path: /a/:/b' }), path: 'routes[0].match.path' },
  { name: 'pathRegex with invalid syntax', yaml: config({ match: "pathRegex: '^/(unclosed'" }), path: 'routes[0].match.pathRegex' },
  { name: 'pathRegex catastrophic ^/(a+)+$', yaml: config({ match: "pathRegex: '^/(a+)+$'" }), path: 'routes[0].match.pathRegex' },
  {
    name: 'header condition with a catastrophic regex',
    yaml: config({ match: "path: /*\nheaders:\n  x-version: '/^(a+)+$/'" }),
    path: 'routes[0].match.headers.x-version',
  },
  { name: 'host *.*.example.com', yaml: config({ match: "path: /*\nhost: '*.*.example.com'" }), path: 'routes[0].match.host' },
  { name: 'host with a space', yaml: config({ match: "path: /*\nhost: 'a b.example.com'" }), path: 'routes[0].match.host' },
  { name: 'host with port 99999', yaml: config({ match: "path: /*\nhost: 'example.com:99999'" }), path: 'routes[0].match.host' },
  { name: 'method "GE T"', yaml: config({ match: "path: /*\nmethods: ['GE T']" }), path: 'routes[0].match.methods[0]' },
  { name: 'payload: empty list', yaml: config({ match: 'path: /*\npayload: []' }), path: 'routes[0].match.payload' },
  { name: 'cache.maxObjectSize not a size', yaml: config({ route: 'cache:\n  maxObjectSize: huge' }), path: 'routes[0].cache.maxObjectSize' },
  { name: 'websocket.idleTimeout not a duration', yaml: config({ route: 'websocket:\n  idleTimeout: forever' }), path: 'routes[0].websocket.idleTimeout' },
  // policies
  { name: 'policy without use', yaml: config({ top: 'policies:\n  stamp:\n    response: { set: { x-a: b } }' }), path: 'policies.stamp.use' },
  { name: 'unknown policy type', yaml: config({ top: 'policies:\n  p:\n    use: no-such-type' }), path: 'policies.p.use' },
  {
    name: 'headers policy with an unknown option (requestt)',
    yaml: config({ top: 'policies:\n  p:\n    use: headers\n    requestt: { set: { x-a: b } }' }),
    path: 'policies.p.requestt',
  },
  {
    name: 'headers policy with an invalid header name',
    yaml: config({ top: "policies:\n  p:\n    use: headers\n    response:\n      set:\n        'bad header': x" }),
    path: 'policies.p.response.set.bad header',
  },
  {
    name: 'request-id policy with an invalid header',
    yaml: config({ top: "policies:\n  p:\n    use: request-id\n    header: 'x request id'" }),
    path: 'policies.p.header',
  },
  { name: 'server.policies names an undefined policy', yaml: config({ server: 'policies: [missing]' }), path: 'server.policies[0]' },
  { name: 'routes[].policies names an undefined policy', yaml: config({ route: 'policies: [missing]' }), path: 'routes[0].policies[0]' },
  {
    name: 'rewrite (route-only) in server.policies',
    yaml: config({ server: 'policies: [strip]', top: 'policies:\n  strip: { use: rewrite, stripPrefix: /api }' }),
    path: 'server.policies[0]',
  },
  // plugins (relative to the config file)
  { name: 'plugin file that does not exist', yaml: config({ top: 'plugins: [./nope.mjs]' }), path: 'plugins[0]' },
  {
    name: 'plugin that throws at import',
    yaml: config({ top: 'plugins: [./throws-at-import.mjs]' }),
    plugins: ['throws-at-import.mjs'],
    path: 'plugins[0]',
  },
  { name: 'plugin whose setup throws', yaml: config({ top: 'plugins: [./setup-throws.mjs]' }), plugins: ['setup-throws.mjs'], path: 'plugins[0]' },
  {
    name: 'plugin registering a policy with a bad name',
    yaml: config({ top: 'plugins: [./good.mjs, ./bad-policy-name.mjs]' }),
    plugins: ['good.mjs', 'bad-policy-name.mjs'],
    path: 'plugins[1]',
  },
  // store, admin, server
  { name: 'unknown store driver', yaml: config({ top: 'store:\n  driver: floppy' }), path: 'store.driver' },
  { name: 'redis store URL not redis://', yaml: config({ top: 'store:\n  driver: redis\n  url: http://127.0.0.1:6379' }), path: 'store.url' },
  { name: 'admin.token too short', yaml: config({ top: 'admin:\n  token: short' }), path: 'admin.token' },
  { name: 'server.limits.maxHeaderBytes tiny', yaml: config({ server: 'limits:\n  maxHeaderBytes: 10' }), path: 'server.limits.maxHeaderBytes' },
  // environment and YAML
  { name: 'PORT=abc in the environment', yaml: BASE, env: { PORT: 'abc' }, path: 'PORT' },
  // The unclosed flow map opens on one line and is noticed on the next: either line is fine.
  {
    name: 'YAML syntax error',
    yaml: YAML_SYNTAX,
    path: '(root)',
    also: new RegExp(`line (${lineOf(YAML_SYNTAX, 'match: {')}|${lineOf(YAML_SYNTAX, 'match: {') + 1})\\b`),
  },
  { name: 'duplicate YAML key', yaml: YAML_DUP_KEY, path: '(root)', also: new RegExp(`line ${lineOf(YAML_DUP_KEY, 'targets:', 1)}\\b`) },
]

interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  listening: boolean
}

const children = new Set<ReturnType<typeof spawn>>()
afterEach(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  children.clear()
})

/** Runs the built CLI; a process that starts listening is killed at once (and reported as such). */
function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const [cmd, fullArgs] = runtimeCommand(CLI, args)
  return new Promise((resolve) => {
    const child = spawn(cmd, fullArgs, { env: { ...process.env, SWITCHBOARD_DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let stdout = ''
    let stderr = ''
    let listening = false
    const seen = (): void => {
      if (!listening && /listening/.test(stdout + stderr)) {
        listening = true
        child.kill('SIGKILL')
      }
    }
    child.stdout!.on('data', (c: Buffer) => ((stdout += c.toString()), seen()))
    child.stderr!.on('data', (c: Buffer) => ((stderr += c.toString()), seen()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, listening })
    })
  })
}

const written = new Map<BadCase, string>()
/** Writes the case's config (and the plugin files it needs) into a fresh temp dir. */
function fileFor(c: BadCase): string {
  let file = written.get(c)
  if (!file) {
    const dir = mkdtempSync(join(tmpdir(), 'sb-bad-'))
    file = join(dir, `bad-${c.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()}.yaml`)
    writeFileSync(file, c.yaml)
    for (const p of c.plugins ?? []) copyFileSync(join(PLUGIN_FIXTURES, p), join(dir, p))
    written.set(c, file)
  }
  return file
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const STACK_FRAME = /^\s+at |\n\s{4}at /m

describe(`bad configs through the built CLI on ${RUNTIME}`, () => {
  it('has the CLI built and a corpus of at least 45 cases', () => {
    expect(existsSync(CLI), `${CLI} is missing: build the switchboard CLI (apps/gateway) first`).toBe(true)
    expect(CASES.length).toBeGreaterThanOrEqual(45)
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length)
  })

  it('accepts the base config every case edits (check exits 0, run listens)', async () => {
    const c: BadCase = { name: 'base', yaml: BASE, path: '' }
    const file = fileFor(c)
    const checked = await cli(['check', '--config', file], { PORT: '0' })
    expect(checked.code, checked.stdout + checked.stderr).toBe(0)
    expect(checked.stdout).toContain(`${file}: ok`)
    const ran = await cli(['--config', file], { PORT: '0' })
    expect(ran.listening, ran.stdout + ran.stderr).toBe(true)
  })

  it('accepts a good plugin loaded from a path relative to the config', async () => {
    const c: BadCase = {
      name: 'good-plugin',
      yaml: config({ upstream: 'balancer: always-first', top: 'plugins: [./good.mjs]\npolicies:\n  n: { use: noop }', server: 'policies: [n]' }),
      plugins: ['good.mjs'],
      path: '',
    }
    const checked = await cli(['check', '--config', fileFor(c)], { PORT: '0' })
    expect(checked.code, checked.stdout + checked.stderr).toBe(0)
  })

  for (const c of CASES) {
    for (const mode of ['check', 'run'] as const) {
      it(`${mode}: ${c.name} → ${c.path}`, async () => {
        const file = fileFor(c)
        const args = mode === 'check' ? ['check', '--config', file] : ['--config', file]
        const r = await cli(args, { PORT: '0', ...c.env })
        const output = r.stdout + r.stderr
        const named = new RegExp(`^switchboard: invalid config: ${escape(file)}: ${escape(c.path)}: expected `, 'm')
        expect(
          {
            code: r.code,
            namesFileAndPath: named.test(r.stderr),
            also: c.also ? c.also.test(r.stderr) : true,
            stackTrace: STACK_FRAME.test(output),
            listening: r.listening,
          },
          `${mode} ${file}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
        ).toEqual({ code: 2, namesFileAndPath: true, also: true, stackTrace: false, listening: false })
      }, 30_000)
    }
  }
})
