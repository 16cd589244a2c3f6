import { createHash } from 'node:crypto'
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '@switchboard/core'
import { parseConfig, parseConfigText } from '../src/config/index.ts'
import { loadConfigFile } from '../src/config/load.ts'
import { importSeed004Config, isSeed004Config, seed004ToYaml } from '../src/config/seed004.ts'

// The seed's README (python-api-router), `config.yaml`, verbatim.
const SEED_CONFIG = `# 1) Where can the proxy forward to?
targets:
  openrouter:
    baseUrl: https://openrouter.ai/api/v1
    defaultHeaders:
      Content-Type: "application/json; charset=utf-8"

# 2) Secret keys (resolved from env vars)
secrets:
  or_rk1: "Bearer \${OPENROUTER_KEY_RK1}"

# 3) Who can use the proxy, and what can they do?
clients:
  rk-robot-1:
    target: openrouter
    authHeaderRef: or_rk1
    allowedMethods: [POST]
    allowedPaths:
      - /chat/completions
    timeoutMs: 60000
`
const SECRET = 'sk-or-v1-0123456789abcdef-seed004-test'
const ENV_FILE = `# upstream keys: never committed\nOPENROUTER_KEY_RK1=${SECRET}\n`

const sha256 = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`

function seedDir(config = SEED_CONFIG, env: string | null = ENV_FILE): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sb-seed004-')))
  writeFileSync(join(dir, 'config.yaml'), config)
  if (env !== null) writeFileSync(join(dir, '.env'), env)
  return dir
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('seed 004 (python-api-router) config: detection', () => {
  it('recognises the README config and nothing else', () => {
    expect(isSeed004Config(parseYaml(SEED_CONFIG))).toBe(true)
    expect(isSeed004Config({ targets: {}, clients: {} })).toBe(true)
    expect(isSeed004Config({ targets: {}, secrets: {}, clients: {}, server: { port: 1 } })).toBe(false)
    expect(isSeed004Config({ targets: {}, clients: {}, upstreams: {} })).toBe(false)
    expect(isSeed004Config({ targets: {}, clients: {}, routes: [] })).toBe(false)
    expect(isSeed004Config({ targets: {}, secrets: {} })).toBe(false)
    expect(isSeed004Config({ clients: {} })).toBe(false)
    expect(isSeed004Config({ 'http://127.0.0.1:3000': { endpoints: {} } })).toBe(false)
    expect(isSeed004Config([{ targets: {} }])).toBe(false)
    expect(isSeed004Config(null)).toBe(false)
    expect(isSeed004Config('targets: {}')).toBe(false)
  })
})

describe('seed 004 config: import', () => {
  it('keeps targets, secrets and clients as written and adds the seed server address and docs', () => {
    const raw = parseYaml(SEED_CONFIG)
    expect(importSeed004Config(raw)).toEqual({
      server: { host: '127.0.0.1', port: 8787 },
      targets: { openrouter: { baseUrl: 'https://openrouter.ai/api/v1', defaultHeaders: { 'Content-Type': 'application/json; charset=utf-8' } } },
      secrets: { or_rk1: 'Bearer ${OPENROUTER_KEY_RK1}' },
      clients: {
        'rk-robot-1': { target: 'openrouter', authHeaderRef: 'or_rk1', allowedMethods: ['POST'], allowedPaths: ['/chat/completions'], timeoutMs: 60000 },
      },
      docs: true,
    })
  })

  it('refuses keys neither the seed nor our format knows, naming the key path', () => {
    const raw = parseYaml(SEED_CONFIG)
    raw.clients['rk-robot-1'].rateLimit = 10
    expect(configError(() => importSeed004Config(raw, { file: 'config.yaml' })).message).toMatch(/^config\.yaml: clients\.rk-robot-1\.rateLimit: expected one of the keys python-api-router documents/)
    const raw2 = parseYaml(SEED_CONFIG)
    raw2.targets.openrouter.apiKey = 'x'
    expect(configError(() => importSeed004Config(raw2)).message).toMatch(/^targets\.openrouter\.apiKey: /)
    expect(configError(() => importSeed004Config({ ...parseYaml(SEED_CONFIG), routes: [] })).message).toMatch(/^routes: /)
    expect(configError(() => importSeed004Config({ targets: {} })).message).toMatch(/^clients: /)
    expect(configError(() => importSeed004Config({ targets: { a: 'https://x' }, clients: {} })).message).toMatch(/^targets\.a: /)
    expect(configError(() => importSeed004Config([])).message).toMatch(/^\(root\): /)
  })

  it('passes our own client and target keys through for the gateway parser', () => {
    const raw = parseYaml(SEED_CONFIG)
    raw.clients['rk-robot-1'].keyHash = sha256('a-real-key')
    raw.targets.openrouter.host = 'openrouter.ai'
    const config = parseConfig(importSeed004Config(raw), { env: { OPENROUTER_KEY_RK1: SECRET } })
    expect(config.clients['rk-robot-1']).toMatchObject({ keyHash: sha256('a-real-key'), nameIsKey: false })
    expect(config.upstreams.openrouter.host).toEqual({ literal: 'openrouter.ai' })
  })

  it('seed004ToYaml: a header naming the file, ${ENV} kept as text, and it round-trips through parseConfig', () => {
    const raw = parseYaml(SEED_CONFIG)
    const yaml = seed004ToYaml(raw, { file: 'deploy/config.yaml' })
    expect(yaml.split('\n')[0]).toBe('# Imported from deploy/config.yaml (python-api-router format) by @switchboard/gateway.')
    expect(yaml).toContain('rk-robot-1')
    expect(yaml).toMatch(/^# Clients without key\/keyHash authenticate with their own name .*: rk-robot-1\.$/m)
    expect(yaml).toContain('${OPENROUTER_KEY_RK1}')
    const env = { OPENROUTER_KEY_RK1: SECRET }
    const fromYaml = parseConfig(parseConfigText(yaml, 'imported.yaml'), { env })
    const direct = parseConfig(importSeed004Config(raw), { env })
    expect({ ...fromYaml, source: undefined }).toEqual({ ...direct, source: undefined })
    expect(fromYaml.server).toMatchObject({ host: '127.0.0.1', port: 8787 })
    expect(fromYaml.clients['rk-robot-1'].target).toBe('openrouter')
    expect(fromYaml.docs).toBeDefined()
  })
})

describe('seed 004 config: loadConfigFile with its .env', () => {
  it('the README config and a .env load as they are', async () => {
    const dir = seedDir()
    const { config } = await loadConfigFile(join(dir, 'config.yaml'), { env: {} })
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8787 })
    expect(config.clients['rk-robot-1']).toMatchObject({
      name: 'rk-robot-1',
      keyHash: sha256('rk-robot-1'),
      nameIsKey: true,
      target: 'openrouter',
      authHeaderRef: 'or_rk1',
      allowedMethods: ['POST'],
      allowedPaths: ['/chat/completions'],
      timeoutMs: 60000,
    })
    expect(config.secrets.or_rk1).toBe(`Bearer ${SECRET}`)
    expect(config.upstreams.openrouter.targets.map((t) => t.url)).toEqual(['https://openrouter.ai/api/v1'])
    expect(config.upstreams.openrouter.host).toBe('upstream')
    expect(config.upstreams.openrouter.defaultHeaders).toEqual({ 'content-type': 'application/json; charset=utf-8' })
    expect(config.docs).toMatchObject({ path: '/docs' })
    expect(config.proxy).toMatchObject({ path: '/proxy' })
    expect(config.routes).toEqual([])
  })

  it('the process environment wins over the .env', async () => {
    const dir = seedDir()
    const { config } = await loadConfigFile(join(dir, 'config.yaml'), { env: { OPENROUTER_KEY_RK1: 'sk-from-process' } })
    expect(config.secrets.or_rk1).toBe('Bearer sk-from-process')
  })

  it('without the variable anywhere: a ConfigError at secrets.or_rk1', async () => {
    const dir = seedDir(SEED_CONFIG, null)
    await expect(loadConfigFile(join(dir, 'config.yaml'), { env: {} })).rejects.toThrow(/secrets\.or_rk1: expected environment variable OPENROUTER_KEY_RK1 to be set/)
  })

  it('--format api-router forces the import; --format switchboard reads it as our own format', async () => {
    const dir = seedDir()
    const file = join(dir, 'config.yaml')
    expect((await loadConfigFile(file, { env: {}, format: 'api-router' })).config.server.port).toBe(8787)
    const native = (await loadConfigFile(file, { env: {}, format: 'switchboard' })).config
    expect(native.server.port).toBe(8080)
    expect(native.docs).toBeUndefined()
    const ours = seedDir(`server: { port: 9000 }\n${SEED_CONFIG}`)
    await expect(loadConfigFile(join(ours, 'config.yaml'), { env: {}, format: 'api-router' })).rejects.toThrow(/server: expected one of the keys of a python-api-router config/)
    // Auto-detection leaves a file with server: to our parser.
    expect((await loadConfigFile(join(ours, 'config.yaml'), { env: {} })).config.server.port).toBe(9000)
  })
})
