// The user's path, end to end: install the tarballs `pnpm pack:all` wrote into an empty project
// with npm, start the installed `switchboard` CLI on Node (`npx switchboard`), Bun and Deno and
// send a request through it to a local upstream, then run every README example marked
// `<!-- doctest: run -->` (see scripts/lib/readme-blocks.mjs) in that project on the three runtimes,
// so the examples run against the packed, built packages as a user would get them.
// Each check prints "smoke ok: NAME" or "smoke FAILED: NAME: why" (scripts/test-all.sh counts them);
// the last line says PASS or FAIL. Exit status 1 when anything failed.
// Usage: node scripts/packed-install-test.mjs [--packs DIR] [--keep]   (default: packs/; run pnpm pack:all first)
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { ROOT } from './lib/packing.mjs'
import { extractBlocks, readmeFiles } from './lib/readme-blocks.mjs'

const args = process.argv.slice(2)
const packsIndex = args.indexOf('--packs')
const packs = resolve(packsIndex >= 0 ? args[packsIndex + 1] : join(ROOT, 'packs'))
const keep = args.includes('--keep')
// The runtimes' own binaries, not node_modules/.bin's shims: a shim is a shell (or Node) process in
// front of the runtime, which hides its exit status and sets NODE_PATH into the repository.
const BUN = firstExisting('node_modules/bun/bin/bun.exe', 'node_modules/.bin/bun')
const DENO = firstExisting('node_modules/deno/deno', 'node_modules/.bin/deno')
const CLI_PACKAGE = JSON.parse(readFileSync(join(ROOT, 'apps/gateway/package.json'), 'utf8')).name

let passed = 0
let failed = 0
let project
const ok = (name, detail = '') => {
  passed++
  console.log(`smoke ok: ${name}${detail ? ` (${detail})` : ''}`)
}
const bad = (name, why) => {
  failed++
  console.log(`smoke FAILED: ${name}: ${String(why).trim().split('\n').join('\n    ')}`)
}

const tarballs = existsSync(packs) ? readdirSync(packs).filter((f) => f.endsWith('.tgz')).map((f) => join(packs, f)) : []
if (tarballs.length === 0) {
  bad('packed: tarballs', `none in ${packs}: run \`pnpm build && pnpm pack:all\` first`)
  finish()
}

project = mkdtempSync(join(tmpdir(), 'sb-packed-'))
writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'try-switchboard', private: true, type: 'module' }, null, 2)}\n`)

// 1. npm install of every tarball into the empty project (npm's cache first, else the registry).
{
  const started = Date.now()
  const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs], { timeoutMs: 240_000 })
  const bin = join(project, 'node_modules/.bin/switchboard')
  if (r.code === 0 && existsSync(bin)) ok(`packed: npm install of ${tarballs.length} tarballs`, `${((Date.now() - started) / 1000).toFixed(1)} s`)
  else {
    bad(`packed: npm install of ${tarballs.length} tarballs`, `exit ${r.code}${existsSync(bin) ? '' : ', no node_modules/.bin/switchboard'}\n${r.output.slice(-3000)}`)
    finish()
  }
}

// 2. The installed CLI serves a request to a local upstream on each runtime.
const upstream = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ path: req.url, forwardedFor: req.headers['x-forwarded-for'] ?? null }))
})
await new Promise((r) => upstream.listen(0, '127.0.0.1', r))
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`
writeFileSync(
  join(project, 'gateway.yaml'),
  `server:
  host: 127.0.0.1
  port: 8080 # PORT overrides it
docs: true # its page's assets come from the installed swagger-ui-dist dependency
upstreams:
  backend:
    targets: [${upstreamUrl}]
routes:
  - name: all
    match: { path: /* }
    upstream: backend
`,
)
// npx forwards SIGTERM to the CLI but then ends by the signal itself, so only the runtimes started
// directly are held to exit status 0 (the gateway's drain-and-exit is tested in runtime-tests too).
const launchers = [
  ['node', 'npx', ['--no', '--', 'switchboard', '--config', 'gateway.yaml'], false],
  ['bun', BUN, ['node_modules/.bin/switchboard', '--config', 'gateway.yaml'], true],
  ['deno', DENO, ['run', '-A', `node_modules/${CLI_PACKAGE}/dist/cli.js`, '--config', 'gateway.yaml'], true],
]
for (const [runtime, cmd, cmdArgs, exitZero] of launchers) {
  const name = `packed: \`${[basename(cmd).replace(/\.exe$/, ''), ...cmdArgs].join(' ')}\` serves on ${runtime}`
  try {
    ok(name, await serveOnce(cmd, cmdArgs, exitZero))
  } catch (err) {
    bad(name, err.message)
  }
}
upstream.close()

// 3. README examples marked runnable, as .mjs files in the project, on each runtime.
const ts = createRequire(join(ROOT, 'package.json'))('typescript')
mkdirSync(join(project, 'examples'))
const examples = []
for (const readme of readmeFiles(ROOT)) {
  for (const block of extractBlocks(readFileSync(join(ROOT, readme), 'utf8'))) {
    if (!block.run) continue
    const where = `${readme}:${block.line}`
    if (/\bfrom\s+['"]\.\.?\//.test(block.code)) {
      bad(`packed: README example ${where}`, 'a runnable example must not import relative files')
      continue
    }
    const js = ts.transpileModule(block.code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: 'example.ts',
    }).outputText
    const file = join(project, 'examples', `${dirname(readme).replace(/[\\/]/g, '-')}-${block.index}.mjs`)
    writeFileSync(file, `// ${where}\n${js}`)
    examples.push({ where, file })
  }
}
for (const { where, file } of examples) {
  for (const [runtime, cmd, pre] of [['node', process.execPath, []], ['bun', BUN, []], ['deno', DENO, ['run', '-A']]]) {
    const r = await run(cmd, [...pre, file], { timeoutMs: 30_000 })
    const first = r.output.trim().split('\n')[0]?.slice(0, 100) ?? ''
    if (r.code === 0) ok(`packed: README example ${where} on ${runtime}`, first && `prints: ${first}`)
    else bad(`packed: README example ${where} on ${runtime}`, `exit ${r.code}${r.timedOut ? ' (timed out after 30 s)' : ''}\n${r.output.slice(-2000)}`)
  }
}
if (examples.length === 0) bad('packed: README examples', 'no README block is marked <!-- doctest: run -->')
finish()

/** Starts the CLI, proxies one request through it, stops it with SIGTERM; resolves a summary. */
async function serveOnce(cmd, cmdArgs, exitZero) {
  const port = await freePort()
  // Own process group, so stopping it also stops what npx started.
  const child = spawn(cmd, cmdArgs, { cwd: project, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  child.stdout.on('data', (c) => (out += c))
  child.stderr.on('data', (c) => (out += c))
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)))
  const group = (signal) => {
    try {
      process.kill(-child.pid, signal)
      return true
    } catch {
      return false // ESRCH: nobody left in the group
    }
  }
  let stopped
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) group('SIGTERM')
      const timer = setTimeout(() => group('SIGKILL'), 10_000)
      const code = await exited
      // The rest of the group (the CLI behind npx) gets the same 10 s to drain and exit.
      const deadline = Date.now() + 10_000
      while (group(0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      clearTimeout(timer)
      if (group(0)) {
        group('SIGKILL')
        throw new Error(`still running 10 s after SIGTERM:\n${out.slice(-1500)}`)
      }
      return code
    })())
  try {
    const deadline = Date.now() + 30_000
    while (!out.includes('listening on')) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before listening:\n${out.slice(-2000)}`)
      if (Date.now() > deadline) throw new Error(`not listening after 30 s:\n${out.slice(-2000)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    const res = await fetch(`http://127.0.0.1:${port}/hello?x=1`)
    const text = await res.text()
    let body
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    if (res.status !== 200 || body?.path !== '/hello?x=1' || body?.forwardedFor === null) {
      throw new Error(`GET /hello?x=1 through the gateway: ${res.status} ${text.slice(0, 300)} (wanted 200 from the upstream with X-Forwarded-For)\n${out.slice(-1500)}`)
    }
    // A runtime dependency of the bundled CLI, read from the project's node_modules.
    const asset = await fetch(`http://127.0.0.1:${port}/docs/swagger-ui-bundle.js`)
    const served = Buffer.from(await asset.arrayBuffer())
    const installed = readFileSync(join(project, 'node_modules/swagger-ui-dist/swagger-ui-bundle.js'))
    if (asset.status !== 200 || !served.equals(installed)) {
      throw new Error(`GET /docs/swagger-ui-bundle.js: ${asset.status}, ${served.length} bytes (wanted 200 and the installed swagger-ui-dist file, ${installed.length} bytes)\n${out.slice(-1500)}`)
    }
    const code = await stop()
    if (exitZero && code !== 0) throw new Error(`proxied, but exited with ${code} on SIGTERM (wanted 0):\n${out.slice(-1500)}`)
    if (!/draining/.test(out)) throw new Error(`proxied, but SIGTERM did not drain it:\n${out.slice(-1500)}`)
    return `200 from the upstream, /docs assets from swagger-ui-dist, drained and exited ${code} on SIGTERM`
  } finally {
    await stop().catch(() => {})
  }
}

function run(cmd, cmdArgs, { timeoutMs }) {
  return new Promise((done) => {
    const child = spawn(cmd, cmdArgs, { cwd: project, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    let timedOut = false
    child.stdout.on('data', (c) => (output += c))
    child.stderr.on('data', (c) => (output += c))
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }, timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      done({ code: -1, output: `${output}${err.message}`, timedOut })
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      done({ code, output, timedOut })
    })
  })
}

function firstExisting(...paths) {
  return join(ROOT, paths.find((p) => existsSync(join(ROOT, p))) ?? paths.at(-1))
}

function freePort() {
  return new Promise((done, reject) => {
    const s = createNetServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => done(port))
    })
  })
}

function finish() {
  if (project && !keep) rmSync(project, { recursive: true, force: true })
  else if (project) console.log(`kept ${project}`)
  console.log(`packed-install-test ${failed === 0 ? 'PASS' : 'FAIL'}: ${passed} passed, ${failed} failed`)
  process.exit(failed === 0 ? 0 : 1)
}
