// Packing the workspace the way a registry release would, shared by scripts/pack-all.mjs (the user's
// `pnpm pack:all`) and scripts/smoke-prepare.mjs (the smoke test of the built packages).
// `pnpm pack` applies publishConfig (so `exports` point at dist/) and turns `workspace:^` into real
// ranges; checkPackedManifest() verifies that it did, because a tarball that still says
// `workspace:` or exports `./src/*.ts` installs but cannot be imported.
import { execFileSync } from 'node:child_process'
import { builtinModules } from 'node:module'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const PNPM_VERSION = '10.34.8'

/**
 * Workspace packages under `packages/*` (and `apps/*` with `apps: true`), in folder order.
 * @param {{ apps?: boolean, publishableOnly?: boolean }} [options]
 * @returns {{ name: string, dir: string, manifest: Record<string, any> }[]}
 */
export function workspacePackages({ apps = false, publishableOnly = false } = {}) {
  const out = []
  for (const parent of apps ? ['packages', 'apps'] : ['packages']) {
    for (const name of readdirSync(join(ROOT, parent)).sort()) {
      const dir = join(ROOT, parent, name)
      if (!existsSync(join(dir, 'package.json'))) continue
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (publishableOnly && manifest.private === true) continue
      out.push({ name: manifest.name, dir, manifest })
    }
  }
  return out
}

/** Throws, naming every package, when a package has not been built (pack:all builds nothing). */
export function assertBuilt(pkgs) {
  const missing = pkgs.filter((p) => !existsSync(join(p.dir, 'dist')))
  if (missing.length > 0) {
    throw new Error(
      `no dist/ in ${missing.map((p) => `${p.name} (${relative(ROOT, p.dir)})`).join(', ')}: run \`pnpm build\` (or scripts/setup.sh) first`,
    )
  }
}

/**
 * Packs the given workspace packages into `dest` with one `pnpm pack` run (publishConfig applied,
 * workspace ranges replaced). Uses the repo's pinned pnpm, through npx when it is not installed.
 * @returns {{ name: string, version: string, dir: string, tarball: string, files: string[] }[]}
 */
export function packPackages(pkgs, dest) {
  const local = join(ROOT, 'node_modules/.bin/pnpm')
  const [cmd, pre] = existsSync(local) ? [local, []] : ['npx', ['-y', `pnpm@${PNPM_VERSION}`]]
  const filters = pkgs.flatMap((p) => ['--filter', `./${relative(ROOT, p.dir)}`])
  let out
  try {
    out = execFileSync(cmd, [...pre, '-r', ...filters, 'pack', '--json', '--pack-destination', dest], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    })
  } catch (err) {
    throw new Error(`pnpm pack failed:\n${err.stderr || err.stdout || err.message}`)
  }
  // With one selected package pnpm prints an object, with several an array.
  const parsed = JSON.parse(out.slice(out.search(/[[{]/)))
  const results = Array.isArray(parsed) ? parsed : [parsed]
  return pkgs.map((p) => {
    const r = results.find((x) => x.name === p.name)
    if (!r) throw new Error(`pnpm pack produced no tarball for ${p.name}`)
    return { name: p.name, version: r.version, dir: p.dir, tarball: resolve(dest, r.filename), files: r.files.map((f) => f.path) }
  })
}

/** The package.json inside a packed tarball. */
export function readPackedManifest(tarball) {
  return JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }))
}

const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies', 'devDependencies']

/**
 * What is wrong with a packed manifest for a registry: `workspace:` ranges, entry points in src/
 * or TypeScript, entry points or LICENSE missing from the tarball, no license, still private.
 * @param {Record<string, any>} manifest the tarball's package.json
 * @param {string[]} files the tarball's file list (paths relative to the package)
 * @returns {string[]} problems, empty when publish-ready
 */
export function checkPackedManifest(manifest, files) {
  const problems = []
  const have = new Set(files)
  if (manifest.private === true) problems.push('"private": true')
  if (!manifest.license) problems.push('no "license"')
  if (!have.has('LICENSE')) problems.push('LICENSE is not in the tarball')
  if (!have.has('README.md')) problems.push('README.md is not in the tarball')
  for (const field of DEPENDENCY_FIELDS) {
    for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problems.push(`${field}.${dep} is still "${range}"`)
    }
  }
  const targets = []
  collectTargets(manifest.exports, 'exports', targets)
  for (const field of ['main', 'module', 'types', 'typings']) if (typeof manifest[field] === 'string') targets.push([field, manifest[field]])
  if (typeof manifest.bin === 'string') targets.push(['bin', manifest.bin])
  else for (const [name, path] of Object.entries(manifest.bin ?? {})) targets.push([`bin.${name}`, path])
  for (const [where, target] of targets) {
    const path = target.replace(/^\.\//, '')
    if (path.startsWith('src/') || (/\.[cm]?tsx?$/.test(path) && !/\.d\.[cm]?ts$/.test(path))) {
      problems.push(`${where} points at source "${target}" (publishConfig not applied?)`)
    } else if (!path.includes('*') && !have.has(path)) {
      problems.push(`${where} points at "${target}", which is not in the tarball (not built?)`)
    }
  }
  return problems
}

function collectTargets(node, where, out) {
  if (typeof node === 'string') out.push([where, node])
  else if (Array.isArray(node)) node.forEach((n, i) => collectTargets(n, `${where}[${i}]`, out))
  else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) collectTargets(v, `${where}["${k}"]`, out)
}

/**
 * For a bundled CLI: the bare specifiers its dist/*.js loads at run time (static and literal
 * dynamic imports, require / require.resolve) against the manifest's dependencies. Bundled
 * workspace packages must not be imported; every imported package must be a dependency, and
 * every dependency must be named somewhere in the code (optional drivers are loaded by name).
 * @returns {{ imports: string[], problems: string[] }}
 */
export function checkBundledDependencies(tarball, manifest) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-pack-'))
  try {
    execFileSync('tar', ['-xzf', tarball, '-C', dir])
    const distDir = join(dir, 'package/dist')
    const code = readdirSync(distDir)
      .filter((f) => /\.[cm]?js$/.test(f))
      .map((f) => readFileSync(join(distDir, f), 'utf8'))
      .join('\n')
    const specifiers = new Set()
    const patterns = [
      /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
      /\bimport\s*['"]([^'"]+)['"]/g,
      /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
      /\brequire(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g,
      /\bcreateRequire\w*\([^()]*\)\.resolve\(\s*['"]([^'"]+)['"]\s*\)/g,
    ]
    for (const re of patterns) for (const m of code.matchAll(re)) specifiers.add(m[1])
    const imports = [...new Set([...specifiers].filter(isBarePackage).map(packageName))].sort()
    const declared = new Set(Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies }))
    const problems = []
    for (const name of imports) {
      if (name.startsWith('@switchboard/')) problems.push(`dist imports ${name}, which should be bundled (tsup noExternal)`)
      else if (!declared.has(name)) problems.push(`dist imports "${name}", which is not a dependency`)
    }
    for (const name of declared) {
      if (!code.includes(`"${name}`) && !code.includes(`'${name}`)) problems.push(`dependency "${name}" is never loaded by dist/ (remove it?)`)
    }
    return { imports, problems }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function isBarePackage(spec) {
  if (builtinModules.includes(spec.split('/')[0])) return false
  return !/^(?:\.|\/|node:|bun:|npm:|jsr:|data:|file:|https?:)/.test(spec) && /^(?:@[\w.-]+\/)?[\w.-]+/.test(spec)
}

function packageName(spec) {
  const parts = spec.split('/')
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}
