import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { ConfigError } from '@switchboard/core'
// Read-only use of the gateway's validator: the imported routes and upstreams must be valid today.
import { parseConfig } from '../../gateway/src/config/index.ts'
import { importLegacyConfig, isLegacyConfig, legacyToYaml, type ImportedConfig } from '../src/index.ts'

const fixture = (name: string): unknown => parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'))

const QUICK_START: ImportedConfig = {
  upstreams: {
    'backend-127-0-0-1-3000': { targets: ['http://127.0.0.1:3000'] },
    'backend-127-0-0-1-3100': { targets: ['http://127.0.0.1:3100'] },
  },
  routes: [
    {
      name: 'backend-127-0-0-1-3000-get-log-files',
      match: {
        path: '/get_log_files',
        methods: ['POST', 'PUT', 'PATCH'],
        payload: [
          { name: 'log_file.log', path: 'c:/logs' },
          { name: 'backup_log.log', path: 'd:/backup/logs' },
        ],
      },
      upstream: 'backend-127-0-0-1-3000',
    },
    {
      name: 'backend-127-0-0-1-3000-load-log-file',
      match: { path: '/load_log_file', methods: ['POST', 'PUT', 'PATCH'], payload: [{ name: 'log_file.log', path: 'c:/logs' }] },
      upstream: 'backend-127-0-0-1-3000',
    },
    {
      name: 'backend-127-0-0-1-3100-archive-logs',
      match: {
        path: '/archive_logs',
        methods: ['POST', 'PUT', 'PATCH'],
        payload: [{ source: 'c:/logs', destination: 'e:/archives', compress: true }],
      },
      upstream: 'backend-127-0-0-1-3100',
    },
  ],
  discovery: { endpoints: ['http://127.0.0.1:3000', 'http://127.0.0.1:3100'], remember: { ttl: '5000s' }, replay: 'all', successStatuses: [200], keyQuery: true },
}

const EXAMPLE_REQUEST: ImportedConfig = {
  upstreams: {
    'backend-127-0-0-1-3000': { targets: ['http://127.0.0.1:3000'] },
    'backend-127-0-0-1-3100': { targets: ['http://127.0.0.1:3100'] },
  },
  routes: [
    {
      name: 'backend-127-0-0-1-3000-get-log-files',
      match: { path: '/get_log_files', methods: ['POST', 'PUT', 'PATCH'], payload: [{ name: 'log_file.log', path: 'c:/logs' }] },
      upstream: 'backend-127-0-0-1-3000',
    },
    {
      name: 'backend-127-0-0-1-3100-get-log-files',
      match: { path: '/get_log_files', methods: ['POST', 'PUT', 'PATCH'], payload: [{ name: 'backup_log.log', path: 'd:/backup/logs' }] },
      upstream: 'backend-127-0-0-1-3100',
    },
  ],
  discovery: { endpoints: ['http://127.0.0.1:3000', 'http://127.0.0.1:3100'], replay: 'all', successStatuses: [200], keyQuery: true },
}

describe('isLegacyConfig', () => {
  it('recognises a mapping keyed by backend URLs', () => {
    expect(isLegacyConfig(fixture('quick-start.yaml'))).toBe(true)
    expect(isLegacyConfig(fixture('example-request.yaml'))).toBe(true)
    expect(isLegacyConfig({ 'https://api.example.com': null })).toBe(true)
  })

  it('rejects our own format and anything else', () => {
    expect(isLegacyConfig({ upstreams: {}, routes: [] })).toBe(false)
    expect(isLegacyConfig({ 'http://127.0.0.1:3000': {}, routes: [] })).toBe(false)
    expect(isLegacyConfig({})).toBe(false)
    expect(isLegacyConfig([])).toBe(false)
    expect(isLegacyConfig(null)).toBe(false)
    expect(isLegacyConfig('http://127.0.0.1:3000')).toBe(false)
  })
})

describe('importLegacyConfig', () => {
  it('imports the seed Quick Start config', () => {
    expect(importLegacyConfig(fixture('quick-start.yaml'))).toEqual(QUICK_START)
  })

  it('imports the seed Example Request config (one path, two backends told apart by payload)', () => {
    expect(importLegacyConfig(fixture('example-request.yaml'))).toEqual(EXAMPLE_REQUEST)
  })

  it('produces upstreams and routes the gateway config validator accepts', () => {
    for (const name of ['quick-start.yaml', 'example-request.yaml']) {
      const { discovery, ...rest } = importLegacyConfig(fixture(name))
      expect(discovery.endpoints.length).toBe(2)
      const config = parseConfig(rest, { file: name, env: {} })
      expect(Object.keys(config.upstreams)).toEqual(Object.keys(rest.upstreams))
      expect(config.routes.map((r) => r.match)).toEqual(rest.routes.map((r) => r.match))
    }
  })

  it('makes path-only routes for endpoints without a payload list', () => {
    const out = importLegacyConfig({
      'http://10.0.0.1': { endpoints: { '/status': null, '/health': {}, '/empty': { payload: [] }, '/': null } },
      'https://api.example.com/v1/': { endpoints: { '/users/:id': null } },
    })
    expect(out.upstreams).toEqual({
      'backend-10-0-0-1-80': { targets: ['http://10.0.0.1'] },
      'backend-api-example-com-443-v1': { targets: ['https://api.example.com/v1'] },
    })
    expect(out.routes.map((r) => [r.name, r.match])).toEqual([
      ['backend-10-0-0-1-80-status', { path: '/status' }],
      ['backend-10-0-0-1-80-health', { path: '/health' }],
      ['backend-10-0-0-1-80-empty', { path: '/empty' }],
      ['backend-10-0-0-1-80-root', { path: '/' }],
      // `:` is pattern syntax in our paths: the literal legacy path becomes an anchored regex.
      ['backend-api-example-com-443-v1-users-id', { pathRegex: '^/users/:id$' }],
    ])
    expect(out.discovery).toEqual({ endpoints: ['http://10.0.0.1', 'https://api.example.com/v1'], replay: 'all', successStatuses: [200], keyQuery: true })
  })

  it('keeps names unique when slugs collide', () => {
    const out = importLegacyConfig({ 'http://h:1': { endpoints: { '/a_b': null, '/a-b': null } } })
    expect(out.routes.map((r) => r.name)).toEqual(['backend-h-1-a-b', 'backend-h-1-a-b-2'])
  })

  it('appends fallback endpoints after the backends, without duplicates', () => {
    const out = importLegacyConfig(fixture('example-request.yaml'), {
      fallbackEndpoints: ['http://127.0.0.1:3000', 'http://127.0.0.1:3200/'],
    })
    expect(out.discovery.endpoints).toEqual(['http://127.0.0.1:3000', 'http://127.0.0.1:3100', 'http://127.0.0.1:3200'])
  })

  it('takes the smallest cache_timeout as the remember ttl (seconds)', () => {
    const out = importLegacyConfig({ 'http://a:1': { cache_timeout: 90 }, 'http://b:1': { cache_timeout: '30' }, 'http://c:1': {} })
    expect(out.discovery.remember).toEqual({ ttl: '30s' })
  })

  it('throws a ConfigError naming the key path', () => {
    const cases: [unknown, string][] = [
      [
        { 'http://127.0.0.1:3000': { endpoints: { '/get_log_files': { payload: 'log_file.log' } } } },
        'config.yaml: "http://127.0.0.1:3000".endpoints./get_log_files.payload: expected a list of mappings, got "log_file.log"',
      ],
      [
        { 'http://127.0.0.1:3000': { endpoints: { '/x': { payload: [{ a: 1 }, 'b'] } } } },
        '"http://127.0.0.1:3000".endpoints./x.payload: expected a list of mappings',
      ],
      [{ 'http://127.0.0.1:3000': { cache_timeout: -1 } }, '"http://127.0.0.1:3000".cache_timeout: expected a positive number of seconds, got -1'],
      [{ 'http://127.0.0.1:3000': { cache_timout: 5 } }, '"http://127.0.0.1:3000".cache_timout: expected one of the known keys (cache_timeout, endpoints)'],
      [{ 'http://127.0.0.1:3000': { endpoints: ['/x'] } }, '"http://127.0.0.1:3000".endpoints: expected a mapping of paths, got a list'],
      [{ 'http://127.0.0.1:3000': { endpoints: { x: null } } }, '"http://127.0.0.1:3000".endpoints.x: expected a path starting with /'],
      [{ 'http://127.0.0.1:3000': { endpoints: { '/x': { payloads: [] } } } }, '"http://127.0.0.1:3000".endpoints./x.payloads: expected one of the known keys (payload)'],
      [{ 'http://a:1': {}, 'http://a:1/': {} }, '"http://a:1/": expected a backend URL that is listed once'],
      [{ 'http://a:1': 'x' }, '"http://a:1": expected a mapping with cache_timeout and endpoints'],
      [{ upstreams: {} }, '"upstreams": expected an http:// or https:// URL'],
      [[], '(root): expected a mapping whose keys are backend URLs'],
    ]
    for (const [raw, message] of cases) {
      let error: unknown
      try {
        importLegacyConfig(raw, { file: 'config.yaml' })
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as Error).message).toContain(message)
    }
    expect(() => importLegacyConfig(fixture('example-request.yaml'), { fallbackEndpoints: ['nope'] })).toThrow(
      'fallbackEndpoints[0]: expected an http:// or https:// URL',
    )
  })
})

describe('legacyToYaml', () => {
  it('renders YAML that parses back to the imported object', () => {
    for (const name of ['quick-start.yaml', 'example-request.yaml']) {
      const text = legacyToYaml(fixture(name), { file: name })
      expect(text.startsWith(`# Imported from ${name}`)).toBe(true)
      expect(parse(text)).toEqual(importLegacyConfig(fixture(name)))
    }
  })

  it('lays out the sections the gateway reads', () => {
    const text = legacyToYaml(fixture('example-request.yaml'))
    expect(text).toContain('\nupstreams:\n  backend-127-0-0-1-3000:\n    targets:\n      - http://127.0.0.1:3000\n')
    expect(text).toContain('\ndiscovery:\n  endpoints:\n    - http://127.0.0.1:3000\n    - http://127.0.0.1:3100\n')
  })
})
