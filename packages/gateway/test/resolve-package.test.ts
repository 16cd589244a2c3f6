// resolvePackage() on real package folders in a temporary directory: how a plugin named by its
// package name is found (ESM conditions, main, patterns, parents), and what is refused.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolvePackage } from '../src/config/resolve-package.ts'

const root = mkdtempSync(join(tmpdir(), 'sb-resolve-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Writes node_modules/<name> under `dir` with `manifest` and the given files (each exporting its own name). */
function pkg(dir: string, name: string, manifest: Record<string, unknown>, files: string[]): string {
  const at = join(dir, 'node_modules', name)
  mkdirSync(at, { recursive: true })
  writeFileSync(join(at, 'package.json'), JSON.stringify({ name, ...manifest }))
  for (const f of files) {
    mkdirSync(join(at, f, '..'), { recursive: true })
    writeFileSync(join(at, f), `export default ${JSON.stringify(f)}\n`)
  }
  return at
}

const RUNTIME_CONDITION = 'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node'

describe('resolvePackage', () => {
  const base = join(root, 'config')
  mkdirSync(base, { recursive: true })

  it('uses main when there are no exports, and index.js when there is no main either', () => {
    const a = pkg(base, 'p-main', { main: 'lib/start.js' }, ['lib/start.js'])
    const b = pkg(base, 'p-bare', {}, ['index.js'])
    expect(resolvePackage('p-main', base)).toBe(join(a, 'lib/start.js'))
    expect(resolvePackage('p-bare', base)).toBe(join(b, 'index.js'))
  })

  it('takes the import entry of an ESM-only package (which require.resolve cannot find)', () => {
    const at = pkg(base, 'p-esm', { type: 'module', exports: { '.': { types: './index.d.ts', import: './index.mjs' } } }, ['index.mjs'])
    expect(resolvePackage('p-esm', base)).toBe(join(at, 'index.mjs'))
  })

  it('prefers import over require in a dual package, whatever the key order', () => {
    const at = pkg(base, 'p-dual', { exports: { '.': { require: './index.cjs', import: './index.mjs' } } }, ['index.cjs', 'index.mjs'])
    expect(resolvePackage('p-dual', base)).toBe(join(at, 'index.mjs'))
  })

  it('reads a string export, top-level conditions, nested conditions and arrays', () => {
    const s = pkg(base, 'p-string', { exports: './main.js' }, ['main.js'])
    const c = pkg(base, 'p-cond', { exports: { import: './esm.js', default: './other.js' } }, ['esm.js', 'other.js'])
    const n = pkg(base, 'p-nested', { exports: { '.': { browser: './browser.js', node: { import: './node.mjs' }, default: './d.js' } } }, ['browser.js', 'node.mjs', 'd.js'])
    const arr = pkg(base, 'p-array', { exports: { '.': [{ worker: './w.js' }, './fallback.js'] } }, ['w.js', 'fallback.js'])
    expect(resolvePackage('p-string', base)).toBe(join(s, 'main.js'))
    expect(resolvePackage('p-cond', base)).toBe(join(c, 'esm.js'))
    expect(resolvePackage('p-nested', base)).toBe(join(n, 'node.mjs'))
    expect(resolvePackage('p-array', base)).toBe(join(arr, 'fallback.js'))
  })

  it(`honours the runtime's own condition (${RUNTIME_CONDITION}) before default`, () => {
    const at = pkg(base, 'p-runtime', { exports: { bun: './bun.js', deno: './deno.js', default: './default.js' } }, ['bun.js', 'deno.js', 'default.js'])
    const expected = RUNTIME_CONDITION === 'node' ? 'default.js' : `${RUNTIME_CONDITION}.js`
    expect(resolvePackage('p-runtime', base)).toBe(join(at, expected))
  })

  it('resolves subpaths: exact keys, the longest * pattern, and scoped names', () => {
    const at = pkg(base, '@acme/plugins', {
      exports: { '.': './index.js', './stamp': { import: './stamp.mjs' }, './x/*': './x/*.js', './x/deep/*': './deep/*.mjs' },
    }, ['index.js', 'stamp.mjs', 'x/one.js', 'deep/two.mjs'])
    expect(resolvePackage('@acme/plugins', base)).toBe(join(at, 'index.js'))
    expect(resolvePackage('@acme/plugins/stamp', base)).toBe(join(at, 'stamp.mjs'))
    expect(resolvePackage('@acme/plugins/x/one', base)).toBe(join(at, 'x/one.js'))
    expect(resolvePackage('@acme/plugins/x/deep/two', base)).toBe(join(at, 'deep/two.mjs'))
  })

  it('finds a package in a node_modules above the config folder', () => {
    const at = pkg(root, 'p-parent', { main: 'p.js' }, ['p.js'])
    const nested = join(base, 'sites', 'eu')
    mkdirSync(nested, { recursive: true })
    expect(resolvePackage('p-parent', nested)).toBe(join(at, 'p.js'))
  })

  it('falls back to CommonJS resolution for a package that only exports require', () => {
    const at = pkg(base, 'p-cjs', { exports: { require: './index.cjs' } }, ['index.cjs'])
    expect(resolvePackage('p-cjs', base)).toBe(join(at, 'index.cjs'))
  })

  it('refuses with a message naming what is missing', () => {
    expect(() => resolvePackage('p-missing', base)).toThrow(`package 'p-missing' is not installed in a node_modules folder at or above ${base}`)
    pkg(base, 'p-closed', { exports: { '.': './index.js', './internal': null } }, ['index.js'])
    expect(() => resolvePackage('p-closed/internal', base)).toThrow("package 'p-closed' exports nothing for './internal'")
    expect(() => resolvePackage('p-closed/other', base)).toThrow("package 'p-closed' exports nothing for './other'")
    pkg(base, 'p-escape', { exports: { '.': '../p-main/lib/start.js' } }, [])
    expect(() => resolvePackage('p-escape', base)).toThrow("exports '../p-main/lib/start.js', which is not a path inside the package")
    expect(() => resolvePackage('@acme', base)).toThrow("'@acme' is not a package name")
    const broken = join(base, 'node_modules', 'p-broken')
    mkdirSync(broken, { recursive: true })
    writeFileSync(join(broken, 'package.json'), '{ not json')
    expect(() => resolvePackage('p-broken', base)).toThrow('is not readable JSON')
  })
})
