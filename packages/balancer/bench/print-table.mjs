// Runs the pick() micro-benchmark and prints a Markdown table of ops/s (strategy × list size).
// Usage, from the repo root: node packages/balancer/bench/print-table.mjs
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const dir = mkdtempSync(join(tmpdir(), 'balancer-bench-'))
const out = join(dir, 'bench.json')
try {
  execFileSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'bench', '--run', 'packages/balancer/bench', '--outputJson', out], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const report = JSON.parse(readFileSync(out, 'utf8'))
  const sizes = []
  const rows = new Map()
  for (const file of report.files) {
    for (const group of file.groups) {
      const size = group.fullName.match(/(\d+) endpoints/)?.[1] ?? group.fullName
      if (!sizes.includes(size)) sizes.push(size)
      for (const b of group.benchmarks) {
        if (!rows.has(b.name)) rows.set(b.name, {})
        rows.get(b.name)[size] = b.hz
      }
    }
  }
  const fmt = (hz) => (hz === undefined ? '—' : hz >= 1e6 ? `${(hz / 1e6).toFixed(1)} M` : `${(hz / 1e3).toFixed(0)} k`)
  console.log(`| strategy | ${sizes.map((s) => `${s} endpoints`).join(' | ')} |`)
  console.log(`| --- | ${sizes.map(() => '---:').join(' | ')} |`)
  for (const [name, bySize] of rows) console.log(`| ${name} | ${sizes.map((s) => fmt(bySize[s])).join(' | ')} |`)
  console.log(`\npick() ops/s, ${process.version}, vitest bench (tinybench); higher is better.`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
