import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve, sep } from 'node:path'

/** The conditions a plugin package is resolved with: the gateway `import()`s it. */
const CONDITIONS = new Set(['import', 'node', 'default', ...runtimeCondition()])

function runtimeCondition(): string[] {
  const g = globalThis as { Bun?: unknown; Deno?: unknown }
  if (g.Bun !== undefined) return ['bun']
  if (g.Deno !== undefined) return ['deno']
  return []
}

type ExportTarget = string | null | ExportTarget[] | { [condition: string]: ExportTarget }

/**
 * The file a package specifier (`name`, `@scope/name`, `name/sub/path`) names for an `import()`
 * from `baseDir`, the way ESM resolves it: the package is looked up in `node_modules` from
 * `baseDir` upwards, then its `exports` are read with the `import` (and `node`, `bun` or `deno`,
 * and `default`) conditions, or its `main` when it has no `exports`. A package whose exports only
 * say `require` is resolved as CommonJS would. Throws an Error saying what was missing.
 * @example
 * resolvePackage('@acme/switchboard-plugin', '/etc/switchboard') // '/etc/switchboard/node_modules/@acme/switchboard-plugin/dist/index.js'
 */
export function resolvePackage(specifier: string, baseDir: string): string {
  const parts = specifier.split('/')
  const nameParts = specifier.startsWith('@') ? 2 : 1
  if (parts.length < nameParts || parts.slice(0, nameParts).some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`'${specifier}' is not a package name`)
  }
  const name = parts.slice(0, nameParts).join('/')
  const subpath = parts.length > nameParts ? `./${parts.slice(nameParts).join('/')}` : '.'
  const dir = packageDir(name, baseDir)
  if (dir === undefined) throw new Error(`package '${name}' is not installed in a node_modules folder at or above ${baseDir}`)
  let manifest: { exports?: ExportTarget | Record<string, ExportTarget>; main?: unknown }
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof manifest
  } catch (err) {
    throw new Error(`${join(dir, 'package.json')} is not readable JSON (${(err as Error).message})`)
  }
  if (manifest.exports === undefined || manifest.exports === null) {
    if (subpath !== '.') return join(dir, subpath)
    return join(dir, typeof manifest.main === 'string' ? manifest.main : 'index.js')
  }
  const target = exportFor(manifest.exports, subpath)
  if (target !== undefined) return inside(dir, target, name)
  // Only a `require` condition (a CommonJS-only package): CommonJS resolution finds it.
  try {
    return createRequire(join(baseDir, 'noop.js')).resolve(specifier)
  } catch {
    throw new Error(`package '${name}' exports nothing for '${subpath}' under the conditions ${[...CONDITIONS].join(', ')}`)
  }
}

/** `node_modules/<name>` (with a package.json) in `from` or the nearest folder above it. */
function packageDir(name: string, from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dirname(dir) === dir) return undefined
  }
}

/** The target `exports` maps `subpath` to (exact keys first, then the longest matching `*` pattern). */
function exportFor(exports: ExportTarget | Record<string, ExportTarget>, subpath: string): string | undefined {
  const map = isSubpathMap(exports) ? (exports as Record<string, ExportTarget>) : { '.': exports as ExportTarget }
  if (Object.hasOwn(map, subpath)) return conditional(map[subpath])
  let best: { key: string; star: string } | undefined
  for (const key of Object.keys(map)) {
    const star = key.indexOf('*')
    if (star === -1) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (subpath.length >= key.length - 1 && subpath.startsWith(prefix) && subpath.endsWith(suffix) && (!best || prefix.length > best.key.indexOf('*'))) {
      best = { key, star: subpath.slice(prefix.length, subpath.length - suffix.length) }
    }
  }
  if (!best) return undefined
  const target = conditional(map[best.key])
  return target?.replaceAll('*', best.star)
}

/** True when the keys of `exports` are subpaths (`.`, `./x`), not conditions. */
function isSubpathMap(exports: unknown): boolean {
  return typeof exports === 'object' && exports !== null && !Array.isArray(exports) && Object.keys(exports).some((k) => k.startsWith('.'))
}

/** A string target, the first resolvable one of an array, or the first matching condition's (in key order). */
function conditional(target: ExportTarget | undefined): string | undefined {
  if (typeof target === 'string') return target
  if (target === null || target === undefined) return undefined
  if (Array.isArray(target)) {
    for (const t of target) {
      const found = conditional(t)
      if (found !== undefined) return found
    }
    return undefined
  }
  for (const key of Object.keys(target)) {
    if (!CONDITIONS.has(key)) continue
    const found = conditional(target[key])
    if (found !== undefined) return found
  }
  return undefined
}

/** `target` (which must start with `./`) within the package folder, never outside it. */
function inside(dir: string, target: string, name: string): string {
  const path = resolve(dir, target)
  if (!target.startsWith('./') || (path !== dir && !path.startsWith(dir + sep))) {
    throw new Error(`package '${name}' exports '${target}', which is not a path inside the package`)
  }
  return path
}
