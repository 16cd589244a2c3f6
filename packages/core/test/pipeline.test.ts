import { describe, expect, it } from 'vitest'
import { compose, definePolicy, type Exchange, GatewayError, type Middleware, OptionReader, UnauthorizedError } from '../src/index.ts'
import { createTestExchange } from '../src/testing.ts'

const ok = (text = 'ok') => (ex: Exchange) => ex.respond(200, {}, text)

describe('compose()', () => {
  it('runs layers in order on the way in and in reverse on the way out', async () => {
    const trail: string[] = []
    const layer = (name: string): Middleware => async (_ex, next) => {
      trail.push(`${name} in`)
      await next()
      trail.push(`${name} out`)
    }
    const ex = createTestExchange()
    await compose([layer('a'), layer('b'), layer('c')], { terminal: async (e) => {
      trail.push('terminal')
      await e.respond(204)
    } })(ex)
    expect(trail).toEqual(['a in', 'b in', 'c in', 'terminal', 'c out', 'b out', 'a out'])
    expect(ex.sent?.status).toBe(204)
  })

  it('turns an error into a response inside the chain, so outer layers decorate it and see the status', async () => {
    const seen: Array<number | undefined> = []
    const outer: Middleware = async (ex, next) => {
      ex.responseHeaders['x-request-id'] = 'r1'
      ex.onResponseHead((_status, headers) => void (headers['x-decorated'] = 'yes'))
      await next()
      seen.push(ex.response?.status)
    }
    const auth: Middleware = async () => {
      throw new UnauthorizedError()
    }
    const ex = createTestExchange()
    await compose([outer, auth], { terminal: ok() })(ex)
    expect(ex.sent?.status).toBe(401)
    expect(ex.sent?.headers['x-request-id']).toBe('r1')
    expect(ex.sent?.headers['x-decorated']).toBe('yes')
    expect(ex.sent?.headers['content-type']).toMatch(/application\/json/)
    expect(JSON.parse(ex.sent!.text)).toEqual({ error: { code: 'ERR_UNAUTHORIZED', message: 'Unauthorized' } })
    expect(seen).toEqual([401])
    expect((ex.error as GatewayError).code).toBe('ERR_UNAUTHORIZED')
  })

  it('an error from the terminal becomes a response too; a non-gateway error is a 500 without details', async () => {
    const ex = createTestExchange()
    await compose([async (_e, next) => next()], { terminal: async () => {
      throw new Error('secret stack detail')
    } })(ex)
    expect(ex.sent?.status).toBe(500)
    expect(ex.sent?.text).not.toContain('secret')
    expect(JSON.parse(ex.sent!.text).error.code).toBe('ERR_INTERNAL')
  })

  it('calling next() twice is an error (answered with 500 naming no internals)', async () => {
    const twice: Middleware = async function twice(_ex, next) {
      await next()
      await next()
    }
    let terminalRuns = 0
    const ex = createTestExchange()
    const errors: unknown[] = []
    await compose([twice], {
      terminal: async (e) => {
        terminalRuns++
        await e.respond(200, {}, 'first')
      },
      onError: (err) => void errors.push(err),
    })(ex)
    expect(terminalRuns).toBe(1)
    expect(String(errors[0])).toMatch(/next\(\) called twice in twice/)
  })

  it('a layer that answers on its own stops the chain', async () => {
    let reached = false
    const ex = createTestExchange({ target: '/hello' })
    await compose([async (e) => e.respond(200, {}, 'hi')], { terminal: async () => void (reached = true) })(ex)
    expect(reached).toBe(false)
    expect(ex.sent?.text).toBe('hi')
  })

  it('an error after the head was written is rethrown (the transport cuts the response)', async () => {
    const ex = createTestExchange()
    const run = compose([], { terminal: async (e) => {
      await e.respond(200, {}, 'partial')
      throw new Error('upstream died mid-body')
    } })
    await expect(run(ex)).rejects.toThrow(/Internal error/)
  })
})

describe('definePolicy() and OptionReader', () => {
  const stamp = definePolicy({
    name: 'stamp',
    parse: (raw, at) => {
      const r = new OptionReader(raw, at)
      const options = { value: r.string('value', 'x'), times: r.integer('times', 1, 1) }
      r.done()
      return options
    },
    create: (o) => async (ex, next) => {
      ex.responseHeaders['x-stamp'] = o.value.repeat(o.times)
      await next()
    },
  })

  it('parses options, builds a layer', async () => {
    const layer = stamp.create(stamp.parse({ value: 'ab', times: 2 }, 'policies.s'), { name: 's', log: () => {} })
    const ex = createTestExchange()
    await compose([layer], { terminal: ok() })(ex)
    expect(ex.sent?.headers['x-stamp']).toBe('abab')
  })

  it('names the key path of a bad or unknown option', () => {
    expect(() => stamp.parse({ times: 0 }, 'policies.s')).toThrow(/policies\.s\.times: expected a number ≥ 1/)
    expect(() => stamp.parse({ valeu: 'x' }, 'policies.s')).toThrow(/policies\.s\.valeu: expected one of the known keys \(value, times\)/)
  })

  it('refuses a name that is not kebab-case', () => {
    expect(() => definePolicy({ name: 'Bad Name', parse: () => ({}), create: () => async (_e, n) => n() })).toThrow(/kebab-case/)
  })
})

describe('createIpMatcher()', () => {
  it('matches IPv4 and IPv6 ranges, and IPv4 ranges against IPv4-mapped clients', async () => {
    const { createIpMatcher } = await import('../src/index.ts')
    const m = createIpMatcher(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1'])
    expect(m('10.255.1.2')).toBe(true)
    expect(m('::ffff:10.1.2.3')).toBe(true)
    expect(m('11.0.0.1')).toBe(false)
    expect(m('192.168.1.7')).toBe(true)
    expect(m('192.168.1.8')).toBe(false)
    expect(m('2001:db8:ffff::1')).toBe(true)
    expect(m('2001:db9::1')).toBe(false)
    expect(m('::1')).toBe(true)
    expect(m('not an ip')).toBe(false)
    expect(createIpMatcher([])('10.0.0.1')).toBe(false)
    expect(() => createIpMatcher(['10.0.0.0/33'])).toThrow(/prefix length/)
    expect(() => createIpMatcher(['10.0.0.256'])).toThrow(/not an IP/)
  })
})
