import type { IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createUpstreamPool, proxyFetch, requestUpstream } from '../src/index.ts'
import { cleanup, defer, httpServer, proxyServer, rawValues, request } from './helpers.ts'

afterEach(cleanup)

async function recordingUpstream() {
  const seen: IncomingMessage[] = []
  const upstream = await httpServer((req, res) => {
    seen.push(req)
    req.resume()
    req.on('end', () => res.end('ok'))
  })
  return { ...upstream, seen }
}

const spoofed = [
  'Host', 'shop.example',
  'Forwarded', 'for=6.6.6.6;proto=https',
  'X-Forwarded-For', '6.6.6.6',
  'X-Forwarded-Host', 'evil.example',
  'X-Forwarded-Proto', 'https',
  'X-Forwarded-Port', '8443',
  'X-Forwarded-Prefix', '/admin',
  'X-Real-IP', '6.6.6.6',
]

describe('forwarding headers from an untrusted client (the default)', () => {
  it('drops every client forwarding header and sets ours', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, { clientIp: '192.0.2.10' })
    await request(proxy.url, { headers: spoofed })
    const raw = upstream.seen[0].rawHeaders
    expect(rawValues(raw, 'x-forwarded-for')).toEqual(['192.0.2.10'])
    expect(rawValues(raw, 'x-forwarded-host')).toEqual(['shop.example'])
    expect(rawValues(raw, 'x-forwarded-proto')).toEqual(['http'])
    expect(rawValues(raw, 'x-forwarded-port')).toEqual([String(proxy.port)])
    expect(rawValues(raw, 'x-forwarded-prefix')).toEqual([])
    expect(rawValues(raw, 'x-real-ip')).toEqual([])
    expect(rawValues(raw, 'forwarded')).toEqual([])
  })

  it('trustForwarded is asked with the client IP; a "no" is untrusted', async () => {
    const upstream = await recordingUpstream()
    const asked: string[] = []
    const proxy = await proxyServer(upstream.url, {
      clientIp: '192.0.2.10',
      trustForwarded: (ip) => (asked.push(ip), ip === '10.0.0.1'),
    })
    await request(proxy.url, { headers: spoofed })
    expect(asked).toEqual(['192.0.2.10'])
    expect(upstream.seen[0].headers['x-forwarded-for']).toBe('192.0.2.10')
    expect(upstream.seen[0].headers['x-forwarded-prefix']).toBeUndefined()
  })

  it('forwardedHeader emits our own RFC 7239 element only', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, { clientIp: '2001:db8::7', forwardedHeader: true, proto: 'https' })
    await request(proxy.url, { headers: spoofed })
    expect(rawValues(upstream.seen[0].rawHeaders, 'forwarded')).toEqual(['for="[2001:db8::7]";host=shop.example;proto=https'])
  })
})

describe('forwarding headers from a trusted proxy', () => {
  it('appends to X-Forwarded-For and Forwarded, keeps proto, host, port and prefix', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, {
      clientIp: '10.0.0.1',
      trustForwarded: (ip) => ip === '10.0.0.1',
      forwardedHeader: true,
    })
    await request(proxy.url, { headers: spoofed })
    const raw = upstream.seen[0].rawHeaders
    expect(rawValues(raw, 'x-forwarded-for')).toEqual(['6.6.6.6, 10.0.0.1'])
    expect(rawValues(raw, 'x-forwarded-host')).toEqual(['evil.example'])
    expect(rawValues(raw, 'x-forwarded-proto')).toEqual(['https'])
    expect(rawValues(raw, 'x-forwarded-port')).toEqual(['8443'])
    expect(rawValues(raw, 'x-forwarded-prefix')).toEqual(['/admin'])
    expect(rawValues(raw, 'x-real-ip')).toEqual(['6.6.6.6'])
    expect(rawValues(raw, 'forwarded')).toEqual(['for=6.6.6.6;proto=https, for=10.0.0.1;host=shop.example;proto=http'])
  })

  it('without forwardedHeader the trusted Forwarded passes unchanged; missing fields are filled in', async () => {
    const upstream = await recordingUpstream()
    const proxy = await proxyServer(upstream.url, { clientIp: '10.0.0.1', trustForwarded: () => true })
    await request(proxy.url, { headers: ['Host', 'shop.example', 'Forwarded', 'for=6.6.6.6'] })
    const raw = upstream.seen[0].rawHeaders
    expect(rawValues(raw, 'forwarded')).toEqual(['for=6.6.6.6'])
    expect(rawValues(raw, 'x-forwarded-for')).toEqual(['10.0.0.1'])
    expect(rawValues(raw, 'x-forwarded-proto')).toEqual(['http'])
    expect(rawValues(raw, 'x-forwarded-port')).toEqual([String(proxy.port)])
  })
})

describe('requestUpstream() and proxyFetch() use the same rules', () => {
  it('strip untrusted and keep trusted forwarding headers', async () => {
    const upstream = await recordingUpstream()
    const pool = createUpstreamPool(upstream.url)
    defer(() => pool.destroy())
    const req = { rawHeaders: spoofed, headers: { host: 'shop.example' }, method: 'GET', url: '/' } as unknown as Parameters<typeof requestUpstream>[0]
    ;(await requestUpstream(req, { pool, clientIp: '192.0.2.10' })).cancel()
    expect(upstream.seen[0].headers['x-forwarded-prefix']).toBeUndefined()
    expect(upstream.seen[0].headers['x-forwarded-for']).toBe('192.0.2.10')
    const headers = new Headers()
    for (let i = 0; i < spoofed.length; i += 2) if (spoofed[i] !== 'Host') headers.append(spoofed[i], spoofed[i + 1])
    const res = await proxyFetch(new Request('http://gw.example:8080/', { headers }), upstream.url, {
      pool,
      clientIp: '10.0.0.1',
      trustForwarded: () => true,
    })
    await res.text()
    expect(upstream.seen[1].headers['x-forwarded-prefix']).toBe('/admin')
    expect(upstream.seen[1].headers['x-forwarded-for']).toBe('6.6.6.6, 10.0.0.1')
    const plain = await proxyFetch(new Request('http://gw.example:8080/', { headers }), upstream.url, { pool, clientIp: '192.0.2.10' })
    await plain.text()
    expect(upstream.seen[2].headers['x-forwarded-prefix']).toBeUndefined()
    expect(upstream.seen[2].headers['x-forwarded-port']).toBe('8080')
  })
})
