import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { describeBalancer, makeEndpoints } from '../src/conformance.ts'
import { consistentHash, stickyCookie } from '../src/index.ts'
import { req } from './helpers.ts'

describeBalancer({ name: 'sticky-cookie', create: () => stickyCookie() })
// With an affinity fallback the pair is affine even before the cookie exists.
describeBalancer({
  name: 'sticky-cookie',
  create: () => stickyCookie({ fallback: consistentHash({ key: { header: 'x-user' } }) }),
  affinity: (key) => req({ headers: { 'x-user': key } }),
})

/** The `name=value` part of a Set-Cookie line. */
const pair = (setCookie: string) => setCookie.split(';')[0]

describe('stickyCookie', () => {
  it('issues a cookie for the chosen endpoint and routes it back there (in process)', () => {
    const balancer = stickyCookie()
    const list = makeEndpoints(5)
    const first = balancer.pick(list, req())!
    const setCookie = balancer.responseHeaders!(first, req())!['set-cookie']
    expect(setCookie).toMatch(/^sb_upstream=[0-9a-f]{8}; Path=\/; HttpOnly; SameSite=Lax$/)
    const back = req({ headers: { cookie: `a=1; ${pair(setCookie)}` } })
    for (let i = 0; i < 20; i++) expect(balancer.pick(list, back)).toBe(first) // round-robin alone would rotate
    expect(balancer.responseHeaders!(first, back)).toBeUndefined() // already set: nothing to send
  })

  it('never leaks the endpoint URL or id in the cookie', () => {
    const balancer = stickyCookie()
    const list = makeEndpoints(3)
    for (const e of list) {
      const line = balancer.responseHeaders!(e, req())!['set-cookie']
      expect(line).not.toContain(e.url)
      expect(line).not.toContain(e.id)
      expect(line).not.toContain('10.0.')
    }
  })

  it('falls back and re-issues when the cookie names an endpoint that left', () => {
    const balancer = stickyCookie()
    const list = makeEndpoints(3)
    const gone = list[1]
    const stale = req({ headers: { cookie: pair(balancer.responseHeaders!(gone, req())!['set-cookie']) } })
    const remaining = [list[0], list[2]]
    const picked = balancer.pick(remaining, stale)!
    expect(remaining).toContain(picked)
    expect(balancer.responseHeaders!(picked, stale)!['set-cookie']).not.toBe(pair(balancer.responseHeaders!(gone, req())!['set-cookie']))
  })

  it('ignores malformed cookie values', () => {
    const balancer = stickyCookie({ name: 'route' })
    const list = makeEndpoints(3)
    for (const value of ['zzzzzzzz', '123', '', '0123456789']) {
      expect(list).toContain(balancer.pick(list, req({ headers: { cookie: `route=${value}` } })))
    }
  })

  it('writes the configured attributes', () => {
    const balancer = stickyCookie({ name: 'route', ttlMs: '1h', path: '/app', domain: 'example.com', httpOnly: false, secure: true, sameSite: 'None' })
    const line = balancer.responseHeaders!(makeEndpoints(1)[0], req())!['set-cookie']
    expect(line).toMatch(/^route=[0-9a-f]{8}; Path=\/app; Domain=example\.com; Max-Age=3600; Secure; SameSite=None$/)
  })

  it('refreshes a cookie with a TTL on every response', () => {
    const balancer = stickyCookie({ ttlMs: 60_000 })
    const e = makeEndpoints(1)[0]
    const line = balancer.responseHeaders!(e, req())!['set-cookie']
    expect(balancer.responseHeaders!(e, req({ headers: { cookie: pair(line) } }))?.['set-cookie']).toBe(line)
  })

  it('throws naming bad options', () => {
    expect(() => stickyCookie({ name: 'a b' })).toThrow(/^name must be a cookie token/)
    expect(() => stickyCookie({ sameSite: 'None' })).toThrow(/^sameSite "None" requires secure: true/)
    expect(() => stickyCookie({ sameSite: 'lax' as never })).toThrow(/^sameSite must be one of/)
    expect(() => stickyCookie({ ttlMs: 'soon' })).toThrow(/^ttlMs must be a duration/)
    expect(() => stickyCookie({ path: '/a;b' })).toThrow(/^path must be/)
    expect(() => stickyCookie({ fallback: 'round-robin' as never })).toThrow(/^fallback must be a balancer/)
  })

  describe('over real HTTP', () => {
    let server: Server | undefined
    afterEach(async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
      server = undefined
    })

    it('a client that keeps the cookie stays on one endpoint', async () => {
      const balancer = stickyCookie({ name: 'route' })
      const list = makeEndpoints(4)
      // A minimal gateway: pick with the request's real headers, answer with the endpoint id.
      server = createServer((request, response) => {
        const info = { method: request.method ?? 'GET', target: request.url ?? '/', headers: request.headers, clientIp: '127.0.0.1' }
        const endpoint = balancer.pick(list, info)!
        const extra = balancer.responseHeaders?.(endpoint, info)
        response.writeHead(200, { 'content-type': 'text/plain', connection: 'close', ...extra })
        response.end(endpoint.id)
      })
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`

      const first = await fetch(url)
      const firstId = await first.text()
      const setCookie = first.headers.get('set-cookie')
      expect(setCookie).toMatch(/^route=[0-9a-f]{8};/)
      const seen = new Set<string>()
      for (let i = 0; i < 6; i++) {
        const response = await fetch(url, { headers: { cookie: pair(setCookie!) } })
        seen.add(await response.text())
        expect(response.headers.get('set-cookie')).toBeNull()
      }
      expect([...seen]).toEqual([firstId])
      // Without the cookie, round-robin moves on.
      const other = await fetch(url)
      expect(await other.text()).not.toBe(firstId)
    })
  })
})
