// Adds up the vitest JSON reports and smoke logs of every runtime and prints one line,
// "N passed, M failed", exiting non-zero when anything failed or a runtime produced no report.
// Usage: node scripts/summarize-results.mjs <results-dir> <runtime...>
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const [dir, ...runtimes] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
const problems = []

for (const rt of runtimes) {
  const report = join(dir, `vitest-${rt}.json`)
  if (!existsSync(report)) {
    failed++
    problems.push(`${rt}: vitest wrote no report (crashed?) — see ${join(dir, `vitest-${rt}.log`)}`)
  } else {
    const r = JSON.parse(readFileSync(report, 'utf8'))
    passed += r.numPassedTests
    failed += r.numFailedTests
    skipped += r.numPendingTests + (r.numTodoTests ?? 0)
    // A suite that failed to load (import error) counts no tests; count it as a failure.
    for (const suite of r.testResults ?? []) {
      if (suite.status === 'failed' && (suite.assertionResults ?? []).every((a) => a.status !== 'failed')) {
        failed++
        problems.push(`${rt}: ${suite.name}: ${String(suite.message).split('\n')[0]}`)
      }
    }
    for (const suite of r.testResults ?? []) {
      for (const a of suite.assertionResults ?? []) {
        if (a.status === 'failed') problems.push(`${rt}: ${a.fullName}`)
      }
    }
  }
  const smoke = join(dir, `smoke-${rt}.log`)
  const text = existsSync(smoke) ? readFileSync(smoke, 'utf8') : ''
  const ok = text.match(/^smoke ok: /gm)?.length ?? 0
  const bad = text.match(/^smoke FAILED: /gm)?.length ?? 0
  passed += ok
  failed += bad
  if (ok === 0 && bad === 0) {
    failed++
    problems.push(`${rt}: the smoke test of the built packages printed nothing`)
  }
  for (const line of text.split('\n')) if (line.startsWith('smoke FAILED: ')) problems.push(`${rt}: ${line}`)
}
// Static checks: one result for the typecheck, one per package for publint.
for (const [name, perPackage] of [['typecheck', null], ['lint', /All good!/g]]) {
  const exitFile = join(dir, `${name}.exit`)
  if (!existsSync(exitFile)) continue
  const ok = readFileSync(exitFile, 'utf8').trim() === '0'
  const log = readFileSync(join(dir, `${name}.log`), 'utf8')
  const count = perPackage ? (log.match(perPackage)?.length ?? 0) : 1
  if (ok) passed += Math.max(count, 1)
  else {
    failed++
    problems.push(`${name} failed — see ${join(dir, `${name}.log`)}`)
  }
}
if (existsSync(join(dir, 'smoke-prepare.failed'))) {
  failed++
  problems.push('packing the built packages for the smoke test failed')
}

if (problems.length > 0) {
  console.log('\nFailures:')
  for (const p of problems.slice(0, 60)) console.log(`  - ${p}`)
}
console.log(`\nruntimes: ${runtimes.join(', ')}${skipped ? ` (${skipped} skipped)` : ''}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
