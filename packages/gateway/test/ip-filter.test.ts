import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { definePolicy } from '@switchboard/core'
// Relative until the lead exports it from @switchboard/policies.
import { ipFilterPolicy } from '@switchboard/policies'
import { createGateway, GatewayRegistry, parseConfig } from '../src/index.ts'
import { simpleConfig, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream } = useFixtures()

/** Whether this machine can listen on the IPv6 loopback (some containers have IPv6 off). */
const HAS_IPV6_LOOPBACK = await new Promise<boolean>((resolve) => {
  const probe = createServer()
  probe.once('error', () => resolve(false))
  probe.listen(0, '::1', () => probe.close(() => resolve(true)))
})

function registry(): GatewayRegistry {
  const r = new GatewayRegistry()
  // Until the lead lists ip-filter in builtinPolicies, register it here.
  if (!r.policy(ipFilterPolicy.name)) r.registerPolicy(ipFilterPolicy)
  // Test-only: answers GET /whoami with the client address the policies saw.
  r.registerPolicy(
    definePolicy({
      name: 'whoami',
      parse: () => ({}),
      create: () => async (ex, next) => (ex.request.path === '/whoami' ? ex.respond(200, {}, ex.request.clientIp) : next()),
    }),
  )
  return r
}

/** A gateway listening on `host` (`127.0.0.1`, `::1`, or `::` for dual stack), port 0. */
async function gatewayOn(host: string, raw: Record<string, unknown>): Promise<number> {
  const reg = registry()
  const gateway = await createGateway(parseConfig(raw, { registry: reg }), { logger: () => {}, registry: reg })
  cleanup.push(() => gateway.close())
  return (await gateway.listen(0, host)).port
}

/** One GET on a fresh connection from `host` (the client's address is then `host`, or its IPv4-mapped form). */
function get(host: string, port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function config(up: TestUpstream, office: Record<string, unknown>, server: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...simpleConfig([up.url], { server: { policies: ['office'], ...server } }), policies: { office: { use: 'ip-filter', ...office }, who: { use: 'whoami' } } }
}

describe('ip-filter over real sockets', () => {
  it('allows 127.0.0.1 by 127.0.0.0/8 and refuses it when not listed, forwarding nothing', async () => {
    const up = await upstream()
    const open = await gatewayOn('127.0.0.1', config(up, { allow: ['127.0.0.0/8', '::1/128'] }))
    const ok = await get('127.0.0.1', open, '/hello')
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toMatchObject({ upstream: 'upstream', url: '/hello' })
    expect(up.requests).toHaveLength(1)

    const closed = await gatewayOn('127.0.0.1', config(up, { allow: ['10.0.0.0/8', '::1/128'] }))
    const refused = await get('127.0.0.1', closed, '/hello')
    expect(refused.status).toBe(403)
    expect(refused.headers['content-type']).toMatch(/^application\/json/)
    expect(JSON.parse(refused.body)).toEqual({ error: { code: 'ERR_FORBIDDEN', message: 'Your address is not allowed' } })
    expect(up.requests).toHaveLength(1)
  })

  it.skipIf(!HAS_IPV6_LOOPBACK)('allows and refuses a client over ::1 (skipped when the machine has no IPv6 loopback)', async () => {
    const up = await upstream()
    const open = await gatewayOn('::1', config(up, { allow: ['::1/128'] }))
    expect((await get('::1', open, '/')).status).toBe(200)
    const v4only = await gatewayOn('::1', config(up, { allow: ['127.0.0.0/8'] }))
    expect((await get('::1', v4only, '/')).status).toBe(403)
    const denied = await gatewayOn('::1', config(up, { allow: ['::/0'], deny: ['::1'] }))
    expect((await get('::1', denied, '/')).status).toBe(403)
    expect(up.requests).toHaveLength(1)
  })

  it.skipIf(!HAS_IPV6_LOOPBACK)('matches an IPv4-mapped client (dual-stack ::, via 127.0.0.1) by IPv4 ranges (skipped without IPv6 loopback)', async () => {
    const up = await upstream()
    const port = await gatewayOn('::', config(up, { allow: ['127.0.0.0/8'] }, { policies: ['office', 'who'] }))
    // The address the policies see really is the IPv4-mapped form, not a normalised 127.0.0.1.
    expect((await get('127.0.0.1', port, '/whoami')).body).toBe('::ffff:127.0.0.1')
    expect((await get('127.0.0.1', port, '/')).status).toBe(200)
    const denied = await gatewayOn('::', config(up, { allow: ['::/0'], deny: ['127.0.0.1/32'] }))
    expect((await get('127.0.0.1', denied, '/')).status).toBe(403)
    const notListed = await gatewayOn('::', config(up, { allow: ['::1/128'] }))
    expect((await get('127.0.0.1', notListed, '/')).status).toBe(403)
    expect(up.requests).toHaveLength(1)
  })

  it('deny wins over allow', async () => {
    const up = await upstream()
    const port = await gatewayOn('127.0.0.1', config(up, { allow: ['127.0.0.0/8'], deny: ['127.0.0.1'] }))
    expect((await get('127.0.0.1', port, '/')).status).toBe(403)
    expect(up.requests).toHaveLength(0)
  })

  it('ignores X-Forwarded-For from an untrusted client', async () => {
    const up = await upstream()
    // Nobody trusted: the socket peer decides.
    const port = await gatewayOn('127.0.0.1', config(up, { allow: ['127.0.0.0/8'], deny: ['203.0.113.0/24'] }))
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '203.0.113.5' })).status).toBe(200)
    const strict = await gatewayOn('127.0.0.1', config(up, { allow: ['10.0.0.0/8'] }))
    expect((await get('127.0.0.1', strict, '/', { 'x-forwarded-for': '10.1.2.3' })).status).toBe(403)
    // Trusting some other proxy does not make 127.0.0.1's header count either.
    const other = await gatewayOn('127.0.0.1', config(up, { allow: ['10.0.0.0/8'] }, { trustedProxies: ['192.0.2.1'] }))
    expect((await get('127.0.0.1', other, '/', { 'x-forwarded-for': '10.1.2.3' })).status).toBe(403)
  })

  it('decides on the X-Forwarded-For client when the peer is a trusted proxy', async () => {
    const up = await upstream()
    const port = await gatewayOn('127.0.0.1', config(up, { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.9.0.0/16'] }, { trustedProxies: ['127.0.0.1'] }))
    expect((await get('127.0.0.1', port, '/')).status).toBe(403) // the proxy itself is not allowed
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '10.1.2.3' })).status).toBe(200)
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '2001:db8::7' })).status).toBe(200)
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '10.9.1.1' })).status).toBe(403)
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '192.0.2.9' })).status).toBe(403)
    // Read right to left: a client cannot prepend an allowed address in front of its own.
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '10.1.2.3, 192.0.2.9' })).status).toBe(403)
    expect(up.requests).toHaveLength(2)
  })

  it.skipIf(!HAS_IPV6_LOOPBACK)('trusts an IPv6 proxy on ::1 and not an IPv4-mapped peer (skipped without IPv6 loopback)', async () => {
    const up = await upstream()
    const port = await gatewayOn('::', config(up, { allow: ['127.0.0.0/8', '::1'], deny: ['203.0.113.0/24'] }, { trustedProxies: ['::1/128'] }))
    expect((await get('::1', port, '/', { 'x-forwarded-for': '203.0.113.5' })).status).toBe(403)
    expect((await get('::1', port, '/', { 'x-forwarded-for': '127.0.0.9' })).status).toBe(200)
    expect((await get('127.0.0.1', port, '/', { 'x-forwarded-for': '203.0.113.5' })).status).toBe(200)
  })

  it('refuses a bad entry at config time, naming it', () => {
    const raw = { ...simpleConfig(['http://127.0.0.1:9']), policies: { office: { use: 'ip-filter', allow: ['127.0.0.0/8', '::1/129'] } } }
    expect(() => parseConfig(raw, { registry: registry() })).toThrow(/policies\.office\.allow\[1\]: expected an IP address or CIDR range/)
  })
})
