// `pnpm doc-test`: type-checks the code examples against the packages' real exports, so neither a
// README nor a JSDoc comment can show a function that does not exist or a signature that was never
// built.
//
// - README.md under packages/ and apps/: every ```ts / ```typescript block, as a complete module
//   (it imports what it uses). Skip one with `<!-- no-doctest: why -->` on the line before its fence;
//   see scripts/lib/readme-blocks.mjs for the other markers.
// - JSDoc `@example`s in packages/*/src: one-liners usually lean on context (`ex`, `store`,
//   `endpoints`), so each gets the workspace exports it names imported for it (its own package
//   first), and names that are neither exported nor declared become `any` values; a *called* name
//   that nothing exports (`auth()`) is an error, as is every type error that remains. An example
//   without imports/exports runs as the body of an async function (so `if (…) return …` works), an
//   object literal under an `interface`/`type` is checked as a value of it, and `http.`/`fs.` or
//   `readFileSync` mean Node's modules. Implicit-`any` parameters are not reported there.
//
// The examples are written to a temp folder (one folder per package, whose node_modules resolves
// every workspace package by name, i.e. their workspace `exports` in src/, and the package's own
// dependencies) and checked with the TypeScript API and the repository's compiler options. Errors
// are reported at the README or source line. Errors inside the packages' sources are left to
// `pnpm typecheck`.
// Usage: node scripts/doc-test.mjs [--keep] [--no-jsdoc] [README.md | packages/NAME ...]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { ROOT, workspacePackages } from './lib/packing.mjs'
import { extractBlocks, readmeFiles } from './lib/readme-blocks.mjs'

const ts = createRequire(join(ROOT, 'package.json'))('typescript')
/** Free names an example may use as Node's modules (`http.createServer(…)`). */
const NODE_DEFAULT_IMPORTS = new Set(['http', 'https', 'net', 'tls', 'fs', 'path', 'os', 'zlib', 'stream', 'crypto', 'dns', 'events'])
const NODE_NAMED_IMPORTS = new Map(
  Object.entries({ 'node:fs': ['readFileSync', 'writeFileSync', 'existsSync', 'mkdirSync', 'readFile', 'writeFile'], 'node:events': ['once'], 'node:timers/promises': ['setTimeout'] }).flatMap(([m, names]) => names.map((n) => [n, m])),
)
const args = process.argv.slice(2)
const keep = args.includes('--keep')
const jsdoc = !args.includes('--no-jsdoc')
const only = args.filter((a) => !a.startsWith('--')).map((a) => relative(ROOT, resolve(a)))
const readmes = readmeFiles(ROOT).filter((r) => only.length === 0 || only.some((o) => r === o || r.startsWith(`${o}/`)))
const packages = workspacePackages({ apps: true })
const jsdocPackages = jsdoc ? packages.filter((p) => p.dir.startsWith(join(ROOT, 'packages')) && (only.length === 0 || only.includes(relative(ROOT, p.dir)))) : []

const tmp = mkdtempSync(join(tmpdir(), 'sb-doctest-'))
const modules = join(tmp, 'node_modules')
mkdirSync(modules)
linkEntries(join(ROOT, 'node_modules'), modules)
for (const pkg of packages) link(pkg.dir, join(modules, pkg.name))
const prepared = new Set()
/** The temp folder for a package folder (relative to ROOT), with that package's dependencies. */
function folderFor(rel) {
  const dir = join(tmp, rel)
  if (!prepared.has(rel)) {
    prepared.add(rel)
    mkdirSync(dir, { recursive: true })
    const own = join(ROOT, rel, 'node_modules')
    if (existsSync(own)) {
      mkdirSync(join(dir, 'node_modules'))
      linkEntries(own, join(dir, 'node_modules'))
    }
  }
  return dir
}

/** generated file → { kind, where: README or source path, line of the first code line, ... } */
const files = new Map()
const skipped = []
for (const readme of readmes) {
  const dir = folderFor(dirname(readme))
  for (const block of extractBlocks(readFileSync(join(ROOT, readme), 'utf8'))) {
    if (block.skip) {
      skipped.push(`${readme}:${block.line} (${block.skip})`)
      continue
    }
    const file = join(dir, block.path ?? `readme-block-${block.index}.ts`)
    if (files.has(file)) fail(`${readme}:${block.line}: a second block is named ${block.path}`)
    mkdirSync(dirname(file), { recursive: true })
    files.set(file, { kind: 'readme', where: readme, line: block.line, code: block.code })
  }
}
let exportsProgram
let exportsChecker
const exportsByName = jsdocPackages.length > 0 ? workspaceExports() : new Map()
for (const pkg of jsdocPackages) {
  const rel = relative(ROOT, pkg.dir)
  const dir = join(folderFor(rel), '.jsdoc-examples')
  for (const source of sourceFiles(join(pkg.dir, 'src'))) {
    for (const ex of jsdocExamples(readFileSync(source, 'utf8'))) {
      const where = relative(ROOT, source)
      const file = join(dir, `${where.replace(/[\\/.]/g, '_')}_${ex.line}.ts`)
      mkdirSync(dirname(file), { recursive: true })
      files.set(file, { kind: 'jsdoc', where, line: ex.line, code: ex.code, typeName: ex.typeName, pkg: pkg.name, imports: null, declared: new Set(), dropped: new Set() })
    }
  }
}
if (files.size === 0) fail('no examples found')

const configFile = join(tmp, 'tsconfig.json')
writeFileSync(
  configFile,
  JSON.stringify({ extends: join(ROOT, 'tsconfig.base.json'), compilerOptions: { noEmit: true, types: ['node'] }, files: [...files.keys()] }),
)
const config = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail(flatten(d)) })
if (config.errors.length > 0) fail(config.errors.map(flatten).join('\n'))

// JSDoc examples get their context in up to three rounds: imports of the exported names they
// mention, then `any` for the free names the compiler reports, then the final check.
const IMPLICIT_ANY = new Set([7005, 7006, 7019, 7031, 7034])
const errors = []
let program
for (let round = 0; round < 3; round++) {
  for (const [file, f] of files) writeFileSync(file, render(f))
  program = ts.createProgram({ rootNames: [...files.keys()], options: config.options, oldProgram: program })
  let changed = false
  errors.length = 0
  for (const [file, f] of files) {
    const sf = program.getSourceFile(file)
    const syntax = program.getSyntacticDiagnostics(sf)
    const diags = syntax.length > 0 ? syntax : program.getSemanticDiagnostics(sf)
    for (const d of diags) {
      const message = flatten(d)
      // Implicit `any` parameters come from context an example leaves out (`Bun.serve((req) => …)`).
      if (f.kind === 'jsdoc' && IMPLICIT_ANY.has(d.code)) continue
      if (f.kind === 'jsdoc' && syntax.length === 0) {
        const free = /^(?:Cannot find name|No value exists in scope for the shorthand property) '([\w$]+)'/.exec(message)?.[1]
        const conflict = /^Import declaration conflicts with local declaration of '([\w$]+)'/.exec(message)?.[1]
        if (conflict && !f.dropped.has(conflict)) {
          f.dropped.add(conflict)
          changed = true
          continue
        }
        if (free && !new RegExp(`(?:\\bnew\\s+|(?<![.\\w$]))${free.replace('$', '\\$')}\\s*(?:<[^>]*>)?\\(`).test(stripStrings(f.code))) {
          if (!f.declared.has(free)) {
            f.declared.add(free)
            changed = true
          }
          continue
        }
        if (free) {
          errors.push({ f, d, message: `calls ${free}(), which is neither declared in the example nor exported by a workspace package` })
          continue
        }
      }
      errors.push({ f, d, message })
    }
  }
  if (!changed) break
}

const byWhere = new Map()
for (const e of errors) {
  const { line, character } = e.d.file ? ts.getLineAndCharacterOfPosition(e.d.file, e.d.start ?? 0) : { line: 0, character: 0 }
  const at = `${e.f.where}:${e.f.line + line - (e.f.kind === 'jsdoc' ? 1 : 0)}:${character + 1}`
  const text = `  ${at} TS${e.d.code}: ${e.message.replace(/\n/g, '\n    ')}`
  const key = e.f.kind === 'readme' ? e.f.where : `${e.f.where.split('/').slice(0, 2).join('/')} (JSDoc)`
  byWhere.set(key, [...(byWhere.get(key) ?? []), text])
}
for (const [key, list] of byWhere) console.log(`\n${key}:\n${list.join('\n')}`)
if (skipped.length > 0) console.log(`\nskipped (no-doctest): ${skipped.length}\n${skipped.map((s) => `  ${s}`).join('\n')}`)
if (keep) console.log(`\nkept ${tmp}`)
else rmSync(tmp, { recursive: true, force: true })

const count = (kind) => [...files.values()].filter((f) => f.kind === kind).length
const summary = `${count('readme')} README blocks (${skipped.length} skipped) and ${count('jsdoc')} JSDoc examples`
if (errors.length > 0) {
  console.log(`\ndoc-test FAIL: ${errors.length} type error(s) in ${summary}, in ${[...byWhere.keys()].join(', ')}`)
  process.exit(1)
}
console.log(`\ndoc-test PASS: ${summary} type-check`)

/** The module written for an example; line 1 is the JSDoc preamble (README blocks have none). */
function render(f) {
  if (f.kind === 'readme') return `${f.code}\nexport {}\n`
  f.imports ??= importsFor(f)
  const bySpecifier = new Map()
  for (const [name, { specifier, value }] of f.imports) {
    if (f.dropped.has(name) || specifier === null) continue
    const list = bySpecifier.get(specifier) ?? []
    list.push(value ? name : `type ${name}`)
    bySpecifier.set(specifier, list)
  }
  const preamble = [
    ...[...bySpecifier].map(([specifier, names]) => `import { ${names.join(', ')} } from '${specifier}';`),
    ...[...f.imports.keys()].filter((n) => NODE_DEFAULT_IMPORTS.has(n) && !f.dropped.has(n)).map((n) => `import ${n} from 'node:${n}';`),
    ...[...f.declared].map((name) => `declare const ${name}: any; type ${name} = any;`),
  ].join(' ')
  let code = f.code
  // `{ key: …, endpoint: … }` under `interface RememberedRoute`: a value of that type.
  if (/^\s*\{/.test(code) && f.typeName) code = `const example: ${f.typeName} = ${code.trimStart()}`
  // A snippet from inside a function (`if (…) return …`) runs as the body of one; module-level
  // statements (imports, exports, declarations of ambient names) stay at the top.
  const moduleLevel = /^\s*(?:import|export|declare)\b/m.test(code)
  return moduleLevel ? `${preamble}\n${code}\nexport {}\n` : `${preamble} async function example() {\n${code}\n}\nexport {}\n`
}

/**
 * Exports the example mentions and does not import itself, from (in this order) its own source
 * file, its own package, the packages that package depends on, and, for names it calls or
 * constructs, any workspace package (so a context variable such as `headers` stays a variable).
 */
function importsFor(f) {
  const code = stripStrings(f.code)
  const ownImports = new Set([...f.code.matchAll(/^\s*import\s+(?:type\s+)?\{([^}]*)\}/gm)].flatMap((m) => m[1].split(',').map((s) => s.trim().split(/\s+as\s+/).pop().replace(/^type\s+/, ''))))
  const manifest = packages.find((p) => p.name === f.pkg).manifest
  const deps = new Set(Object.keys({ ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies }))
  const own = fileExports(join(ROOT, f.where))
  const imports = new Map()
  for (const name of new Set(code.match(/(?<![.\w$])[A-Za-z_$][\w$]*/g) ?? [])) {
    if (ownImports.has(name)) continue
    if (own.has(name)) {
      imports.set(name, { specifier: join(ROOT, f.where), value: own.get(name) })
      continue
    }
    if (NODE_DEFAULT_IMPORTS.has(name) && new RegExp(`(?<![.\\w$])${name}\\.`).test(code)) {
      imports.set(name, { specifier: null })
      continue
    }
    if (NODE_NAMED_IMPORTS.has(name) && name !== 'setTimeout') {
      imports.set(name, { specifier: NODE_NAMED_IMPORTS.get(name), value: true })
      continue
    }
    const providers = exportsByName.get(name) ?? []
    const called = new RegExp(`(?:\\bnew\\s+|(?<![.\\w$]))${name.replace('$', '\\$')}\\s*(?:<[^>]*>)?\\(`).test(code)
    const pick = providers.find((p) => p.pkg === f.pkg) ?? providers.find((p) => deps.has(p.pkg)) ?? (called ? providers[0] : undefined)
    if (pick) imports.set(name, pick)
  }
  return imports
}

/** name → is a value, for the exports of one source file (its internal helpers' examples use them). */
function fileExports(path) {
  const sf = exportsProgram.getSourceFile(path)
  const sym = sf && exportsChecker.getSymbolAtLocation(sf)
  const out = new Map()
  for (const s of sym ? exportsChecker.getExportsOfModule(sym) : []) {
    const target = s.flags & ts.SymbolFlags.Alias ? exportsChecker.getAliasedSymbol(s) : s
    out.set(s.name, (target.flags & ts.SymbolFlags.Value) !== 0)
  }
  return out
}

/** name → [{ pkg, specifier, value }], over every workspace package's `exports` entry points. */
function workspaceExports() {
  const entries = []
  for (const pkg of packages) {
    if (!pkg.name.startsWith('@switchboard/')) continue
    const exp = pkg.manifest.exports
    const map = typeof exp === 'string' ? { '.': exp } : (exp ?? {})
    for (const [sub, target] of Object.entries(map)) {
      if (typeof target !== 'string' || !target.endsWith('.ts')) continue
      entries.push({ pkg: pkg.name, specifier: sub === '.' ? pkg.name : `${pkg.name}/${sub.replace(/^\.\//, '')}`, file: join(pkg.dir, target) })
    }
  }
  const base = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.base.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
  const sources = jsdocPackages.flatMap((pkg) => sourceFiles(join(pkg.dir, 'src')))
  const p = ts.createProgram({ rootNames: [...entries.map((e) => e.file), ...sources], options: { ...base.options, noEmit: true } })
  const checker = p.getTypeChecker()
  exportsProgram = p
  exportsChecker = checker
  const byName = new Map()
  // core first, so a name several packages re-export resolves to where it is defined
  entries.sort((a, b) => (a.pkg === '@switchboard/core' ? -1 : b.pkg === '@switchboard/core' ? 1 : 0))
  for (const e of entries) {
    const sf = p.getSourceFile(e.file)
    const sym = sf && checker.getSymbolAtLocation(sf)
    if (!sym) continue
    for (const s of checker.getExportsOfModule(sym)) {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
      const value = (target.flags & ts.SymbolFlags.Value) !== 0
      byName.set(s.name, [...(byName.get(s.name) ?? []), { pkg: e.pkg, specifier: e.specifier, value }])
    }
  }
  return byName
}

/** `@example` bodies of the JSDoc comments in a source text, with the line their code starts on. */
function jsdocExamples(text) {
  const out = []
  for (const m of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const startLine = text.slice(0, m.index).split('\n').length
    // The interface or type the comment documents: an object-literal example is a value of it.
    const typeName = /^\s*export\s+(?:declare\s+)?(?:interface|type)\s+([\w$]+)/.exec(text.slice(m.index + m[0].length))?.[1]
    const lines = m[0].replace(/^\/\*\*/, '').replace(/\*\/$/, '').split('\n').map((l) => l.replace(/^\s*\* ?/, ''))
    for (let i = 0; i < lines.length; i++) {
      const tag = /@example\b ?(.*)$/.exec(lines[i])
      if (!tag || /^\s*\{@/.test(lines[i].slice(lines[i].indexOf('@example') - 1))) continue
      const body = []
      let first = startLine + i
      if (tag[1].trim()) body.push(tag[1].replace(/\s*\*\/\s*$/, ''))
      else first++
      for (let j = i + 1; j < lines.length && !/^\s*@\w/.test(lines[j]); j++) body.push(lines[j])
      while (body.length > 0 && !body.at(-1).trim()) body.pop()
      const code = body.filter((l) => !/^\s*```/.test(l)).join('\n')
      if (code.trim()) out.push({ line: first, code, typeName })
    }
  }
  return out
}

function sourceFiles(dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** Code with string, template and comment contents blanked, for name scans. */
function stripStrings(code) {
  return code.replace(/\/\/.*$/gm, '').replace(/'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g, "''")
}

function flatten(d) {
  return ts.flattenDiagnosticMessageText(d.messageText, '\n')
}

function link(target, path) {
  mkdirSync(dirname(path), { recursive: true })
  symlinkSync(realpathSync(target), path, 'dir')
}

function linkEntries(from, to) {
  for (const name of readdirSync(from)) {
    if (name.startsWith('.') || name === '@switchboard') continue
    link(join(from, name), join(to, name))
  }
}

function fail(message) {
  console.log(`doc-test FAIL: ${message}`)
  process.exit(1)
}
