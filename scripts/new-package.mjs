// Scaffolds packages/<name> with the layout every Switchboard package shares.
// Usage: node scripts/new-package.mjs <name> "<description>" [dep@range ...]
import { copyFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs'

const [name, description, ...deps] = process.argv.slice(2)
if (!name || !description) {
  console.error('usage: node scripts/new-package.mjs <name> "<description>" [dep@range ...]')
  process.exit(1)
}
const dir = `packages/${name}`
if (existsSync(dir)) {
  console.error(`${dir} exists`)
  process.exit(1)
}
mkdirSync(`${dir}/src`, { recursive: true })
mkdirSync(`${dir}/test`, { recursive: true })
const dependencies = {}
for (const d of deps) {
  const at = d.lastIndexOf('@')
  const [dep, range] = at > 0 ? [d.slice(0, at), d.slice(at + 1)] : [d, 'workspace:^']
  dependencies[dep] = range
}
const pkg = {
  name: `@switchboard/${name}`,
  version: '0.1.0',
  description,
  type: 'module',
  license: 'MIT',
  sideEffects: false,
  exports: { '.': './src/index.ts' },
  publishConfig: {
    access: 'public',
    exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
  },
  files: ['dist', 'README.md', 'LICENSE'],
  engines: { node: '>=20.19' },
  scripts: { build: 'tsup', typecheck: 'tsc -p tsconfig.json', lint: 'publint --pack pnpm' },
  dependencies,
}
writeFileSync(`${dir}/package.json`, `${JSON.stringify(pkg, null, 2)}\n`)
writeFileSync(`${dir}/tsconfig.json`, `${JSON.stringify({ extends: '../../tsconfig.base.json', include: ['src', 'test', 'bench'] }, null, 2)}\n`)
writeFileSync(
  `${dir}/tsup.config.ts`,
  `import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  removeNodeProtocol: false,
})
`,
)
writeFileSync(
  `${dir}/jsr.json`,
  `${JSON.stringify({ name: `@switchboard/${name}`, version: '0.1.0', license: 'MIT', exports: { '.': './src/index.ts' } }, null, 2)}\n`,
)
// Every package ships the root's MIT LICENSE (pnpm pack:all refuses a tarball without one).
copyFileSync('LICENSE', `${dir}/LICENSE`)
console.log(`created ${dir}`)
