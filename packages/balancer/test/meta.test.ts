// Keeps "one file, one test, one export line, one registry entry" true for every strategy.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { balancerNames, createBalancer } from '../src/index.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')
/** Files in src/ that are not strategies. */
const INFRASTRUCTURE = new Set(['index.ts', 'endpoint.ts', 'registry.ts', 'conformance.ts'])
const strategies = readdirSync(src)
  .filter((file) => file.endsWith('.ts') && !INFRASTRUCTURE.has(file))
  .map((file) => file.slice(0, -3))
const index = readFileSync(join(src, 'index.ts'), 'utf8')

describe('every strategy file in src/', () => {
  it('found the strategies', () => {
    expect(strategies.length).toBeGreaterThanOrEqual(9)
  })

  for (const name of strategies) {
    describe(name, () => {
      it(`has test/${name}.test.ts calling describeBalancer()`, () => {
        const test = join(root, 'test', `${name}.test.ts`)
        expect(existsSync(test), `missing test/${name}.test.ts`).toBe(true)
        expect(readFileSync(test, 'utf8')).toContain('describeBalancer(')
      })

      it('has an export line in src/index.ts', () => {
        expect(index, `src/index.ts lacks an export from './${name}.ts'`).toMatch(
          new RegExp(`^export \\{[^}]*\\} from '\\./${name}\\.ts'`, 'm'),
        )
      })

      it('has a registry entry under its file name', () => {
        expect(balancerNames(), `registerBalancer('${name}', ...) missing`).toContain(name)
        expect(createBalancer(name).name).toBe(name)
      })
    })
  }
})
