import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ConfigError } from '@switchboard/core'

/**
 * Options of {@link loadEnv}.
 * @example loadEnv({ configFile: 'deploy/config.yaml', envFile: 'secrets/prod.env' })
 */
export interface LoadEnvOptions {
  /** The config file; its folder's `.env` is read when `envFile` is not given (and the file exists). */
  configFile: string
  /** `--env-file PATH` (relative to the working directory): read this file instead; it must exist. @default the `.env` beside `configFile` */
  envFile?: string
  /** The variables that win over the file's. @default process.env */
  env?: Record<string, string | undefined>
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' }

/**
 * Parses `.env` text: `KEY=value` and `export KEY=value` lines, `#` comments and blank lines.
 * Values: `'single quoted'` (literal), `"double quoted"` (escapes `\n` `\r` `\t` `\"` `\\`, any
 * other backslash kept as is; may span lines), or unquoted (trimmed; ` #` starts a comment). Keys
 * are `[A-Za-z_][A-Za-z0-9_]*`; a later line wins over an earlier one with the same key. There is
 * no variable interpolation: `${OTHER}` inside a `.env` value is kept as text (and then expanded
 * once more only where the config itself uses it). A malformed line is a {@link ConfigError}
 * naming `file:line`; no value is ever quoted in an error.
 * @example parseEnvFile('export OPENROUTER_KEY_RK1="sk-or-v1-…"  # robot 1\n', '.env') // { OPENROUTER_KEY_RK1: 'sk-or-v1-…' }
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const out = Object.create(null) as Record<string, string>
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const line = lines[i]
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const m = /^\s*(?:export\s+)?([^=\s]+)\s*=([ \t]*)(.*)$/.exec(line)
    // The line may be a pasted secret: errors name its place, never its text.
    if (!m) throw envError(file, lineNo, `line ${lineNo}`, 'KEY=value, export KEY=value, a # comment or a blank line')
    const key = m[1]
    if (!KEY.test(key)) throw envError(file, lineNo, `line ${lineNo}`, 'a variable name of letters, digits and _ (not starting with a digit) before =', key.length > 40 ? undefined : key)
    const rest = m[3]
    const quote = rest[0]
    if (quote !== '"' && quote !== "'") {
      // ` #` starts a comment; a `#` inside a word (`a#b`, `KEY=#b`) is part of the value.
      const padded = m[2] === '' ? rest : ` ${rest}`
      const hash = padded.search(/[ \t]#/)
      out[key] = (hash === -1 ? padded : padded.slice(0, hash)).trim()
      continue
    }
    // A quoted value ends at the first unescaped matching quote, on this line or a later one.
    let value = ''
    let j = 1
    let cur = rest
    let closed = false
    while (!closed) {
      for (; j < cur.length; j++) {
        const c = cur[j]
        if (c === quote) {
          closed = true
          break
        }
        if (quote === '"' && c === '\\' && j + 1 < cur.length) {
          const next = cur[++j]
          value += ESCAPES[next] ?? `\\${next}`
          continue
        }
        value += c
      }
      if (closed) break
      if (i + 1 >= lines.length) throw envError(file, lineNo, key, `a closing ${quote} for the value of ${key} (opened on line ${lineNo})`)
      value += '\n'
      cur = lines[++i]
      j = 0
    }
    const after = cur.slice(j + 1)
    if (after.trim() !== '' && !/^[ \t]+#/.test(after)) throw envError(file, i + 1, key, `nothing but a # comment after the closing ${quote} of ${key}`)
    out[key] = value
  }
  return out
}

/**
 * The variables a config is expanded with: `env` (default `process.env`) over the variables of a
 * `.env` file. The file is `envFile` when given (a missing file is a ConfigError) or else the `.env`
 * in the config file's folder, when there is one, so `--config path/to/config.yaml` finds
 * `path/to/.env` from any working directory. A variable set (and non-empty) in `env` wins over the
 * file's; an empty one counts as unset, as it does in `${NAME}` expansion. Nothing is written to
 * `process.env`: the merged record is returned.
 * @example const env = loadEnv({ configFile: 'deploy/config.yaml' }) // reads deploy/.env if present
 */
export function loadEnv(options: LoadEnvOptions): Record<string, string> {
  const base = options.env ?? (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {}
  const file = options.envFile ?? join(dirname(resolve(options.configFile)), '.env')
  const text = readEnvText(file, options.envFile !== undefined)
  const out = text === undefined ? (Object.create(null) as Record<string, string>) : parseEnvFile(text, file)
  for (const key of Object.keys(base)) {
    const value = base[key]
    if (value !== undefined && (value !== '' || !Object.hasOwn(out, key))) out[key] = value
  }
  return out
}

/** The file's text; undefined for an optional file that is not there. */
function readEnvText(file: string, required: boolean): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (!required && code === 'ENOENT') return undefined
    throw new ConfigError('', `a readable .env file (${code ?? (err as Error).message})`, { file })
  }
}

function envError(file: string, line: number, path: string, expected: string, got?: string): ConfigError {
  return new ConfigError(path, expected, got === undefined ? { file: `${file}:${line}` } : { file: `${file}:${line}`, got })
}
