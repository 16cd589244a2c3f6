// `pnpm pack:all`: packs every publishable package (packages/* and the `switchboard` CLI in
// apps/gateway) with the manifests a registry release would have — `exports` pointing at dist/,
// `workspace:^` replaced by real version ranges, LICENSE included — into one folder, so the
// packages can be tried in a fresh project before they are published:
//
//   pnpm build && pnpm pack:all
//   mkdir /tmp/try && cd /tmp/try && npm init -y && npm install /path/to/switchboard/packs/*.tgz
//   npx switchboard --config gateway.yaml
//
// It builds nothing: run `pnpm build` first (a package without dist/ is an error). Every tarball's
// package.json is checked and any problem fails the run, as do CLI dependencies that differ from
// what its bundled dist/ imports.
// Usage: node scripts/pack-all.mjs [--out DIR]   (default: packs/ at the repository root)
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join, relative, resolve } from 'node:path'
import { ROOT, assertBuilt, checkBundledDependencies, checkPackedManifest, packPackages, readPackedManifest, workspacePackages } from './lib/packing.mjs'

const args = process.argv.slice(2)
const outIndex = args.indexOf('--out')
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(ROOT, 'packs'))

try {
  const pkgs = workspacePackages({ apps: true, publishableOnly: true })
  assertBuilt(pkgs)
  mkdirSync(out, { recursive: true })
  // Only what this script writes: --out may name a folder that holds other things.
  for (const f of readdirSync(out)) if (f.endsWith('.tgz') || f === 'README.txt') rmSync(join(out, f))

  const packed = packPackages(pkgs, out)
  const problems = []
  let cli
  for (const p of packed) {
    const manifest = readPackedManifest(p.tarball)
    for (const why of checkPackedManifest(manifest, p.files)) problems.push(`${p.name}: ${why}`)
    if (manifest.bin) {
      const { imports, problems: depProblems } = checkBundledDependencies(p.tarball, manifest)
      for (const why of depProblems) problems.push(`${p.name}: ${why}`)
      cli = { name: p.name, bins: typeof manifest.bin === 'string' ? [manifest.name] : Object.keys(manifest.bin), imports }
    }
  }
  writeFileSync(join(out, 'README.txt'), readme(packed, cli))

  for (const p of packed) console.log(`packed ${p.name}@${p.version} → ${relative(process.cwd(), p.tarball)} (${p.files.length} files)`)
  if (cli) console.log(`CLI ${cli.name} (bin: ${cli.bins.join(', ')}) loads at run time: ${cli.imports.join(', ')}`)
  if (problems.length > 0) {
    console.error(`\npack:all: ${problems.length} problem(s) in the packed manifests:`)
    for (const p of problems) console.error(`  - ${p}`)
    process.exit(1)
  }
  console.log(`\npack:all: ${packed.length} publish-ready tarballs in ${out} (see README.txt there)`)
} catch (err) {
  console.error(`pack:all: ${err.message}`)
  process.exit(1)
}

function readme(packed, cli) {
  const bin = cli?.bins[0] ?? 'switchboard'
  return `Switchboard packages, packed by \`pnpm pack:all\` from ${ROOT}
(publish-ready manifests: exports point at dist/, workspace ranges replaced by real ones).

Try them in a fresh project before a registry release (Node >= 20.19):

  mkdir try-switchboard && cd try-switchboard
  npm init -y && npm pkg set type=module
  npm install ${out}/*.tgz

Then run the gateway CLI (the bin is \`${bin}\`):

  npx ${bin} --config gateway.yaml
  bun node_modules/.bin/${bin} --config gateway.yaml
  deno run -A node_modules/${cli?.name ?? 'switchboard'}/dist/cli.js --config gateway.yaml

or import a package (\`import { createMatcher } from '@switchboard/matcher'\`). Install only the
tarballs you need, but with their @switchboard dependencies: npm looks for those in the registry
unless their tarballs are installed in the same command.

Tarballs:
${packed.map((p) => `  ${basename(p.tarball)}  ${p.name}@${p.version}`).join('\n')}

Rebuild first (\`pnpm build\`), then \`pnpm pack:all\` again: it packs what dist/ holds and builds nothing.
`
}
