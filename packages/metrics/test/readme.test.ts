// The README's TypeScript examples: each is a file in test/readme/ (so `tsc` type-checks it against
// the real API), identical to the README block but for the import path, and each runs here and
// prints what its `// …` comments say.
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
const HEADER = '// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.\n'

afterEach(() => {
  vi.restoreAllMocks()
})

/** What Node's console.log prints (on one line) for the simple values the examples log. */
function show(value: unknown, nested = false): string {
  if (typeof value === 'string') return nested ? `'${value}'` : value
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[ ${value.map((v) => show(v, true)).join(', ')} ]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${k}: ${show(v, true)}`).join(', ')} }`
  }
  return String(value)
}

describe('README examples', () => {
  it('has the five TypeScript examples', () => {
    expect(blocks).toHaveLength(5)
  })

  blocks.forEach((block, i) => {
    const n = i + 1
    it(`example ${n} is test/readme/example-${n}.ts and prints what it says`, async () => {
      const file = readFileSync(new URL(`./readme/example-${n}.ts`, import.meta.url), 'utf8')
      expect(file).toBe(HEADER + block.replaceAll("'@switchboard/metrics'", "'../../src/index.ts'"))
      const printed: string[] = []
      vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.map((a) => show(a)).join(' ')))
      await import(`./readme/example-${n}.ts`)
      const promised = [...block.matchAll(/console\.log\(.*\) \/\/ (.*)$/gm)].map((m) => m[1]!)
      expect(promised.length).toBeGreaterThan(0)
      expect(printed).toEqual(promised)
    })
  })
})
