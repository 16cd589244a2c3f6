import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError } from '@switchboard/core'
import { loadEnv, parseEnvFile } from '../src/config/env-file.ts'
import { loadConfigFile } from '../src/config/load.ts'

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

async function configErrorAsync(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

const tempDir = (): string => realpathSync(mkdtempSync(join(tmpdir(), 'sb-env-')))

// A native config whose port and target come from the environment.
const CONFIG = `server:
  port: \${SB_ENV_TEST_PORT}
upstreams:
  app:
    targets: ['http://127.0.0.1:\${SB_ENV_TEST_UPSTREAM_PORT:-3000}']
routes:
  - name: all
    match: { path: /* }
    upstream: app
`

describe('parseEnvFile', () => {
  it('reads KEY=value, export, comments, blank lines and the three kinds of value', () => {
    const text = [
      '# a comment',
      '',
      'PLAIN=hello world   ',
      'export EXPORTED=yes',
      '  SPACED  =  padded value  # a trailing comment',
      'HASH_IN_WORD=a#b',
      'HASH_FIRST=#kept',
      'EMPTY=',
      "SINGLE='literal \\n ${NOT_EXPANDED} # not a comment'",
      'DOUBLE="line1\\nline2 \\"quoted\\" back\\\\slash \\t tab \\q"  # comment after',
      'DOLLAR=${OTHER}',
      'lower_case_1=ok',
      '\tTABBED=\tx',
    ].join('\n')
    expect(parseEnvFile(text, '.env')).toEqual({
      PLAIN: 'hello world',
      EXPORTED: 'yes',
      SPACED: 'padded value',
      HASH_IN_WORD: 'a#b',
      HASH_FIRST: '#kept',
      EMPTY: '',
      SINGLE: 'literal \\n ${NOT_EXPANDED} # not a comment',
      DOUBLE: 'line1\nline2 "quoted" back\\slash \t tab \\q',
      DOLLAR: '${OTHER}',
      lower_case_1: 'ok',
      TABBED: 'x',
    })
  })

  it('a double-quoted value may span lines; CRLF files and a BOM are fine; the last duplicate wins', () => {
    const text = '\uFEFFCERT="-----BEGIN-----\r\nabc\r\n-----END-----"\r\nA=1\r\nA=2\r\nMULTI_SINGLE=\'x\ny\'\n'
    expect(parseEnvFile(text, '.env')).toEqual({ CERT: '-----BEGIN-----\nabc\n-----END-----', A: '2', MULTI_SINGLE: 'x\ny' })
  })

  it('an unquoted value starting after a space with # is empty (the rest is a comment)', () => {
    expect(parseEnvFile('A= # only a comment\nB=x #y\n', '.env')).toEqual({ A: '', B: 'x' })
  })

  it('a malformed line is a ConfigError naming file:line and never quoting the line', () => {
    const noEquals = configError(() => parseEnvFile('A=1\n\nsk-or-v1-secret-pasted-here\n', '/srv/app/.env'))
    expect(noEquals.message).toMatch(/^\/srv\/app\/\.env:3: /)
    expect(noEquals.message).toContain('KEY=value')
    expect(noEquals.message).not.toContain('sk-or-v1')

    const badKey = configError(() => parseEnvFile('# x\n1ABC=2\n', '.env'))
    expect(badKey.message).toMatch(/^\.env:2: /)
    expect(badKey.message).toContain('variable name')

    expect(configError(() => parseEnvFile('A-B=1', '.env')).message).toMatch(/^\.env:1: /)
    expect(configError(() => parseEnvFile('export\n', '.env')).message).toMatch(/^\.env:1: /)
    expect(configError(() => parseEnvFile('A B=1\n', '.env')).message).toMatch(/^\.env:1: /)
  })

  it('an unterminated quote names the line it opened on; text after a closing quote is refused', () => {
    const open = configError(() => parseEnvFile('A=1\nKEY="sk-secret-unterminated\nB=2\n', 'x.env'))
    expect(open.message).toMatch(/^x\.env:2: KEY: expected a closing "/)
    expect(open.message).not.toContain('sk-secret')

    const trailing = configError(() => parseEnvFile("A=1\nB='v'extra\n", 'x.env'))
    expect(trailing.message).toMatch(/^x\.env:2: B: /)
    // A closing quote on a later line: the error names that line.
    expect(configError(() => parseEnvFile('A="x\ny"z\n', 'x.env')).message).toMatch(/^x\.env:2: A: /)
  })
})

describe('loadEnv', () => {
  it('merges the .env beside the config under the given environment: variables already set win', () => {
    const dir = tempDir()
    writeFileSync(join(dir, '.env'), 'FROM_FILE=file\nBOTH=file\nEMPTY_IN_ENV=file\n')
    const env = loadEnv({ configFile: join(dir, 'config.yaml'), env: { BOTH: 'process', ONLY_ENV: 'process', EMPTY_IN_ENV: '', UNSET: undefined } })
    expect({ ...env }).toEqual({ FROM_FILE: 'file', BOTH: 'process', ONLY_ENV: 'process', EMPTY_IN_ENV: 'file' })
  })

  it('defaults to process.env as the winning side and does not write to it', () => {
    const dir = tempDir()
    const name = `SB_ENV_TEST_${process.pid}_${Date.now()}`
    writeFileSync(join(dir, '.env'), `${name}=from-file\nPATH=from-file\n`)
    const env = loadEnv({ configFile: join(dir, 'config.yaml') })
    expect(env[name]).toBe('from-file')
    expect(env.PATH).toBe(process.env.PATH)
    expect(process.env[name]).toBeUndefined()
  })

  it('no .env beside the config: just the environment', () => {
    const env = loadEnv({ configFile: join(tempDir(), 'config.yaml'), env: { A: '1' } })
    expect({ ...env }).toEqual({ A: '1' })
  })

  it('--env-file replaces the .env beside the config and must exist', () => {
    const dir = tempDir()
    writeFileSync(join(dir, '.env'), 'WHICH=beside\n')
    writeFileSync(join(dir, 'prod.env'), 'WHICH=chosen\n')
    expect(loadEnv({ configFile: join(dir, 'config.yaml'), envFile: join(dir, 'prod.env'), env: {} }).WHICH).toBe('chosen')
    const missing = configError(() => loadEnv({ configFile: join(dir, 'config.yaml'), envFile: join(dir, 'nope.env'), env: {} }))
    expect(missing.message).toContain('nope.env')
    expect(missing.message).toContain('ENOENT')
  })

  it('a .env that is a directory is an error, not silently skipped', () => {
    const dir = tempDir()
    mkdirSync(join(dir, '.env'))
    expect(configError(() => loadEnv({ configFile: join(dir, 'config.yaml'), env: {} })).message).toContain('.env')
  })
})

describe('loadConfigFile with a .env', () => {
  const startCwd = process.cwd()
  afterEach(() => process.chdir(startCwd))

  it('finds the .env beside the config from another working directory', async () => {
    const dir = tempDir()
    const elsewhere = tempDir()
    writeFileSync(join(dir, 'gw.yaml'), CONFIG)
    writeFileSync(join(dir, '.env'), 'SB_ENV_TEST_PORT=18081\nSB_ENV_TEST_UPSTREAM_PORT=3999\n')
    writeFileSync(join(elsewhere, '.env'), 'SB_ENV_TEST_PORT=1\n')
    process.chdir(elsewhere)
    expect(process.cwd()).toBe(elsewhere)
    // Absolute and cwd-relative spellings of the same path find the same .env.
    for (const file of [join(dir, 'gw.yaml'), relative(elsewhere, join(dir, 'gw.yaml'))]) {
      const { config } = await loadConfigFile(file, { env: {} })
      expect(config.server.port).toBe(18081)
      expect(config.upstreams.app.targets[0].url).toBe('http://127.0.0.1:3999')
    }
  })

  it('overrides.env is the winning base; overrides.envFile picks another file', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'gw.yaml'), CONFIG)
    writeFileSync(join(dir, '.env'), 'SB_ENV_TEST_PORT=18081\n')
    writeFileSync(join(dir, 'other.env'), 'SB_ENV_TEST_PORT=18082\n')
    expect((await loadConfigFile(join(dir, 'gw.yaml'), { env: { SB_ENV_TEST_PORT: '18083' } })).config.server.port).toBe(18083)
    expect((await loadConfigFile(join(dir, 'gw.yaml'), { env: {}, envFile: join(dir, 'other.env') })).config.server.port).toBe(18082)
  })

  it('without a .env a missing variable is still an error naming the key path', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'gw.yaml'), CONFIG)
    const err = await configErrorAsync(loadConfigFile(join(dir, 'gw.yaml'), { env: {} }))
    expect(err.message).toContain('server.port')
    expect(err.message).toContain('SB_ENV_TEST_PORT')
  })

  it('a malformed .env fails the load with file:line', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'gw.yaml'), CONFIG)
    writeFileSync(join(dir, '.env'), 'SB_ENV_TEST_PORT=18081\nnot a line\n')
    const err = await configErrorAsync(loadConfigFile(join(dir, 'gw.yaml'), { env: {} }))
    expect(err.message).toMatch(new RegExp(`^${join(dir, '.env').replace(/[.]/g, '\\.')}:2: `))
  })

  it('re-reads the .env on every load (what a reload does)', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'gw.yaml'), CONFIG)
    writeFileSync(join(dir, '.env'), 'SB_ENV_TEST_PORT=18081\n')
    expect((await loadConfigFile(join(dir, 'gw.yaml'), { env: {} })).config.server.port).toBe(18081)
    writeFileSync(join(dir, '.env'), 'SB_ENV_TEST_PORT=18084\n')
    expect((await loadConfigFile(join(dir, 'gw.yaml'), { env: {} })).config.server.port).toBe(18084)
  })
})
