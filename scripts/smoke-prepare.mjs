// Packs every built @switchboard package the way npm would publish it (pnpm applies publishConfig,
// so `exports` point at dist/), unpacks them into a throw-away project next to their npm
// dependencies, and copies scripts/smoke.mjs there. Runtimes then run that project's smoke.mjs,
// which tests the exports map and the built code rather than the TypeScript sources.
// Usage: node scripts/smoke-prepare.mjs <dir>
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dir = resolve(process.argv[2] ?? join(root, '.test-results/smoke'))
rmSync(dir, { recursive: true, force: true })
mkdirSync(join(dir, 'node_modules/@switchboard'), { recursive: true })
const packs = join(dir, 'packs')
mkdirSync(packs)

const npmDeps = new Map()
for (const name of readdirSync(join(root, 'packages'))) {
  const pkgDir = join(root, 'packages', name)
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
  if (!existsSync(join(pkgDir, 'dist'))) throw new Error(`${pkg.name}: no dist/ — run the build first`)
  const out = execFileSync('npx', ['-y', 'pnpm@10.34.8', 'pack', '--pack-destination', packs], { cwd: pkgDir, encoding: 'utf8' })
  const tgz = out.trim().split('\n').pop().trim()
  const dest = join(dir, 'node_modules', pkg.name)
  mkdirSync(dest, { recursive: true })
  execFileSync('tar', ['-xzf', resolve(pkgDir, tgz), '-C', dest, '--strip-components=1'])
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
