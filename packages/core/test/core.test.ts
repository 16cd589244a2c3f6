import { describe, expect, it } from 'vitest'
import {
  BadGatewayError,
  ConfigError,
  GatewayError,
  NoHealthyUpstreamError,
  UpstreamTimeoutError,
  isGatewayError,
  parseDuration,
  parseSize,
} from '../src/index.ts'

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['2s', 2000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    [1500, 1500],
    ['30', 30],
  ])('%s → %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms))

  it.each([['2 weeks'], ['-1s'], [-5], [Number.NaN], [null], [{}], ['s']])('rejects %s', (input) =>
    expect(parseDuration(input)).toBeUndefined(),
  )
})

describe('parseSize', () => {
  it.each([
    ['16kb', 16384],
    ['10mb', 10 * 1024 * 1024],
    ['1gb', 1024 ** 3],
    [512, 512],
    ['100', 100],
  ])('%s → %d bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes))

  it.each([['ten'], ['1.5'], [1.5], ['-1kb'], [true]])('rejects %s', (input) => expect(parseSize(input)).toBeUndefined())
})

describe('GatewayError', () => {
  it('carries status, stable code, cause, and a short JSON body without the cause', async () => {
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:1 secret-detail')
    const err = new BadGatewayError({ cause })
    expect(err).toBeInstanceOf(GatewayError)
    expect(err.status).toBe(502)
    expect(err.code).toBe('ERR_BAD_GATEWAY')
    expect(err.cause).toBe(cause)
    expect(err.toBody()).not.toContain('secret-detail')
    expect(JSON.parse(err.toBody())).toEqual({ error: { code: 'ERR_BAD_GATEWAY', message: 'Bad gateway' } })
    const res = err.toResponse()
    expect(res.status).toBe(502)
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
    expect(await res.json()).toEqual(err.toJSON())
  })

  it('names the timeout phase and keeps 503/504 codes stable', () => {
    expect(new UpstreamTimeoutError({ phase: 'connect' }).toJSON().error).toMatchObject({
      code: 'ERR_UPSTREAM_TIMEOUT',
      phase: 'connect',
    })
    expect(new NoHealthyUpstreamError().status).toBe(503)
    expect(isGatewayError(new NoHealthyUpstreamError())).toBe(true)
    expect(isGatewayError(new Error('x'))).toBe(false)
  })

  it('ConfigError names file, key path, expectation and what it got', () => {
    const err = new ConfigError('upstreams.api.targets[0].url', 'an http:// or https:// URL', {
      file: 'gw.yaml',
      got: 'ftp://x',
    })
    expect(err.message).toBe('gw.yaml: upstreams.api.targets[0].url: expected an http:// or https:// URL, got "ftp://x"')
    expect(err.path).toBe('upstreams.api.targets[0].url')
  })
})

describe('canonicalJson', () => {
  it('is the same text for equal JSON whatever the key order, and different for different values', async () => {
    const { canonicalJson } = await import('../src/index.ts')
    expect(canonicalJson({ b: [2, 1], a: { y: null, x: 'é' } })).toBe('{"a":{"x":"é","y":null},"b":[2,1]}')
    expect(canonicalJson(JSON.parse('{"path":"d:/b","name":"n"}'))).toBe(canonicalJson({ name: 'n', path: 'd:/b' }))
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }))
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]))
  })

  it('refuses what is not plain JSON or nests too deep', async () => {
    const { canonicalJson } = await import('../src/index.ts')
    expect(canonicalJson(new Date(0))).toBeUndefined()
    expect(canonicalJson({ a: Number.NaN })).toBeUndefined()
    expect(canonicalJson([[[1]]], 2)).toBeUndefined()
    expect(canonicalJson([[[1]]], 3)).toBe('[[[1]]]')
  })
})
