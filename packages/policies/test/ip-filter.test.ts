import { describe, expect, it } from 'vitest'
import { compose, ConfigError, type Exchange } from '@switchboard/core'
import { createTestExchange } from '@switchboard/core/testing'
import { ipFilter, ipFilterPolicy, parseIpFilterOptions } from '../src/ip-filter/index.ts'

const ok = (ex: Exchange) => ex.respond(200, {}, 'ok')

async function run(layer: ReturnType<typeof ipFilter>, clientIp: string) {
  const ex = createTestExchange({ clientIp })
  let forwarded = false
  await compose([layer], {
    terminal: (e) => {
      forwarded = true
      return ok(e)
    },
  })(ex)
  return { status: ex.sent?.status, body: ex.sent?.text, forwarded }
}

describe('ip-filter', () => {
  it('lets only allowed IPv4 and IPv6 clients through, IPv4-mapped clients by IPv4 ranges', async () => {
    const layer = ipFilter({ allow: ['127.0.0.0/8', '::1/128', '2001:db8::/32', '192.168.1.7'] })
    for (const ip of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '2001:db8:ffff::1', '192.168.1.7', '[::1]']) {
      expect((await run(layer, ip)).status, ip).toBe(200)
    }
    for (const ip of ['10.0.0.1', '::2', '::ffff:10.0.0.1', '2001:db9::1', '192.168.1.8', '', 'garbage']) {
      const r = await run(layer, ip)
      expect(r.status, ip).toBe(403)
      expect(r.forwarded, ip).toBe(false)
    }
  })

  it('refuses with a 403 ERR_FORBIDDEN JSON body and forwards nothing', async () => {
    const r = await run(ipFilter({ allow: ['10.0.0.0/8'] }), '11.0.0.1')
    expect(r.status).toBe(403)
    expect(r.forwarded).toBe(false)
    expect(JSON.parse(r.body!)).toEqual({ error: { code: 'ERR_FORBIDDEN', message: 'Your address is not allowed' } })
  })

  it('deny wins over allow, and a deny-only filter lets everyone else through', async () => {
    const both = ipFilter({ allow: ['10.0.0.0/8', '::/0'], deny: ['10.9.0.0/16', '2001:db8::/32'] })
    expect((await run(both, '10.1.2.3')).status).toBe(200)
    expect((await run(both, '10.9.1.1')).status).toBe(403)
    expect((await run(both, '::ffff:10.9.1.1')).status).toBe(403)
    expect((await run(both, '2001:db8::5')).status).toBe(403)
    expect((await run(both, '2001:db9::5')).status).toBe(200)
    const denyOnly = ipFilter({ deny: ['203.0.113.0/24'] })
    expect((await run(denyOnly, '198.51.100.1')).status).toBe(200)
    expect((await run(denyOnly, '::1')).status).toBe(200)
    expect((await run(denyOnly, '203.0.113.9')).status).toBe(403)
    // An address that does not parse matches no deny entry either: refused, not waved through.
    expect((await run(denyOnly, 'unknown')).status).toBe(403)
  })

  it('IPv6 ranges over the IPv4-mapped block match plain IPv4 clients', async () => {
    const layer = ipFilter({ allow: ['::ffff:10.0.0.0/104'] })
    expect((await run(layer, '10.1.1.1')).status).toBe(200)
    expect((await run(layer, '11.1.1.1')).status).toBe(403)
  })

  it('parses config, naming the bad entry', () => {
    expect(ipFilterPolicy.parse({ allow: ['127.0.0.0/8', '::1/128'] }, 'policies.office')).toEqual({ allow: ['127.0.0.0/8', '::1/128'], deny: [] })
    expect(parseIpFilterOptions({ deny: '10.0.0.1' }, 'policies.x')).toEqual({ allow: [], deny: ['10.0.0.1'] })
    expect(() => ipFilterPolicy.parse({ allow: ['127.0.0.0/8', '10.0.0.0/33'] }, 'policies.office')).toThrow(/policies\.office\.allow\[1\]: expected an IP address or CIDR range/)
    expect(() => ipFilterPolicy.parse({ deny: ['::1', 'nope'] }, 'policies.office')).toThrow(/policies\.office\.deny\[1\]/)
    expect(() => ipFilterPolicy.parse({ allow: ['010.0.0.1'] }, 'policies.office')).toThrow(ConfigError)
    expect(() => ipFilterPolicy.parse({}, 'policies.office')).toThrow(/policies\.office: expected a non-empty allow or deny list/)
    expect(() => ipFilterPolicy.parse({ alow: ['10.0.0.1'] }, 'policies.office')).toThrow(/policies\.office\.alow/)
    expect(() => ipFilter({})).toThrow(RangeError)
    expect(() => ipFilter({ deny: ['10.0.0.1', 'x'] })).toThrow(/deny\[1\]/)
  })
})
