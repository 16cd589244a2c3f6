// The package is pure: Web-standard APIs only, so it runs unchanged in Node, Bun, Deno, workers and browsers.
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const srcDir = new URL('../src/', import.meta.url)
const files = readdirSync(srcDir).filter((f) => f.endsWith('.ts'))

describe('src/ is Web-standard only', () => {
  it('has source files to check', () => {
    expect(files).toContain('index.ts')
    expect(files.length).toBeGreaterThanOrEqual(5)
  })

  for (const file of files) {
    it(`${file} imports only relative .ts files and uses no runtime-specific globals`, () => {
      const code = readFileSync(new URL(file, srcDir), 'utf8')
      const specifiers = [...code.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!)
      for (const s of specifiers) expect(s, `${file} imports ${s}`).toMatch(/^\.\/[a-z-]+\.ts$/)
      expect(code).not.toMatch(/\brequire\s*\(/)
      expect(code).not.toMatch(/\b(process|Buffer|Deno|Bun|__dirname|global)\s*[.[(]/)
    })
  }
})
