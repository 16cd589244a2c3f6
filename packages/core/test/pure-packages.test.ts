import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

// Meta-test: the pure packages run anywhere (edge workers, browsers), so their sources import no
// `node:` module and use no Node global. Add a package (or a pure file of an I/O package) here
// when it is meant to be pure.
const PACKAGES = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..')
const PURE: Array<{ dir: string; files?: string[] }> = [
  { dir: 'core/src' },
  { dir: 'matcher/src' },
  { dir: 'balancer/src' },
  { dir: 'policies/src' },
  { dir: 'cache/src', files: ['policy.ts', 'cache-control.ts', 'key.ts', 'entry.ts'] },
]
const FORBIDDEN: Array<[RegExp, string]> = [
  [/from\s+['"]node:/, 'imports a node: module'],
  [/import\(\s*['"]node:/, 'imports a node: module'],
  [/\brequire\(/, 'uses require()'],
  [/\bBuffer\b/, 'uses Buffer'],
  [/\bprocess\./, 'uses process'],
  [/\b__dirname\b/, 'uses __dirname'],
]

function sources(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sources(path))
    else if (name.endsWith('.ts')) out.push(path)
  }
  return out
}

/** Source without comments, so a doc comment may mention Buffer or process. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}

describe('pure packages use Web-standard APIs only', () => {
  const files = PURE.flatMap(({ dir, files }) => (files ? files.map((f) => join(PACKAGES, dir, f)) : sources(join(PACKAGES, dir))))
  // The balancer's conformance suite is a test helper for contributors (it imports vitest).
  const checked = files.filter((f) => !f.endsWith('conformance.ts'))
  it('finds the files it checks', () => {
    expect(checked.length).toBeGreaterThan(25)
  })
  it.each(checked.map((f) => [relative(PACKAGES, f), f]))('%s', (_name, file) => {
    const text = code(readFileSync(file, 'utf8'))
    const problems = FORBIDDEN.filter(([re]) => re.test(text)).map(([, why]) => why)
    expect(problems).toEqual([])
  })
})
