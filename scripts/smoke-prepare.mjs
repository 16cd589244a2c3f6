// Packs every built @switchboard package the way npm would publish it (pnpm applies publishConfig,
// so `exports` point at dist/), unpacks them into a throw-away project next to their npm
// dependencies, and copies scripts/smoke.mjs there. Runtimes then run that project's smoke.mjs,
// which tests the exports map and the built code rather than the TypeScript sources.
// The packing itself is shared with `pnpm pack:all` (scripts/lib/packing.mjs).
// Usage: node scripts/smoke-prepare.mjs <dir>
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ROOT as root, assertBuilt, packPackages, workspacePackages } from './lib/packing.mjs'

const dir = resolve(process.argv[2] ?? join(root, '.test-results/smoke'))
rmSync(dir, { recursive: true, force: true })
mkdirSync(join(dir, 'node_modules/@switchboard'), { recursive: true })
const packs = join(dir, 'packs')
mkdirSync(packs)

const pkgs = workspacePackages()
assertBuilt(pkgs)
const npmDeps = new Map()
for (const { name, dir: pkgDir, tarball } of packPackages(pkgs, packs)) {
  const pkg = pkgs.find((p) => p.name === name).manifest
  const dest = join(dir, 'node_modules', name)
  mkdirSync(dest, { recursive: true })
  execFileSync('tar', ['-xzf', tarball, '-C', dest, '--strip-components=1'])
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) {
    if (dep.startsWith('@switchboard/')) continue
    const link = join(pkgDir, 'node_modules', dep)
    if (existsSync(link)) npmDeps.set(dep, realpathSync(link))
  }
}
for (const [dep, target] of npmDeps) {
  const dest = join(dir, 'node_modules', dep)
  mkdirSync(dirname(dest), { recursive: true })
  symlinkSync(target, dest, 'dir')
}
writeFileSync(
  join(dir, 'package.json'),
  `${JSON.stringify({ name: 'switchboard-smoke', private: true, type: 'module' }, null, 2)}\n`,
)
cpSync(join(root, 'scripts/smoke.mjs'), join(dir, 'smoke.mjs'))
console.log(`smoke project ready in ${dir} (${npmDeps.size} npm dependencies linked)`)
