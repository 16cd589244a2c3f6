// README code blocks, shared by scripts/doc-test.mjs (type-checks every ```ts block) and
// scripts/packed-install-test.mjs (runs the blocks marked runnable against the packed tarballs).
//
// Markers, on the line directly before the opening fence:
//   <!-- no-doctest: why -->   not type-checked (say why: a signature listing, a Deno-only API …)
//   <!-- doctest: run -->      type-checked, and also run as a program in a scratch project where
//                              the packed tarballs are installed (it must exit 0 on its own)
// A block whose first line is a comment naming a relative .ts path (`// src/random.ts`,
// `// test/random.test.ts`) is written at that path, so the files of a "write your own" walkthrough
// can import each other; other blocks become block-<n>.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const SKIP_DIRS = new Set(['node_modules', 'dist', '.turbo', 'coverage'])

/** Every README.md under packages/ and apps/ (sorted, relative to root). */
export function readmeFiles(root) {
  const found = []
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      if (SKIP_DIRS.has(name) || name.startsWith('.')) continue
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name === 'README.md') found.push(relative(root, path))
    }
  }
  for (const top of ['packages', 'apps']) walk(join(root, top))
  return found
}

/**
 * The ```ts / ```typescript blocks of a Markdown text.
 * @returns {{ index: number, line: number, code: string, skip?: string, run: boolean, path?: string }[]}
 *   `line` is the README line of the block's first code line; `skip` the no-doctest reason.
 */
export function extractBlocks(text) {
  const lines = text.split('\n')
  const blocks = []
  let count = 0
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i])
    if (!open) continue
    const [, indent, fence, lang] = open
    const body = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[j])
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart())
    }
    if (lang === 'ts' || lang === 'typescript') {
      const before = i > 0 ? lines[i - 1].trim() : ''
      const skip = /^<!--\s*no-doctest\b:?\s*(.*?)\s*-->$/.exec(before)
      const run = /^<!--\s*doctest:\s*run\s*-->$/.test(before)
      const path = /^\/\/\s*((?:[\w.-]+\/)*[\w.-]+\.m?ts)\b/.exec(body[0] ?? '')?.[1]
      blocks.push({
        index: ++count,
        line: i + 2,
        code: body.join('\n'),
        skip: skip ? skip[1] || 'no reason given' : undefined,
        run,
        path: path && !path.startsWith('..') ? path : undefined,
      })
    }
    i = j
  }
  return blocks
}
