import { describe, expect, it } from 'vitest'
import { compose, ConfigError, type Middleware } from '@switchboard/core'
import { createTestExchange, type TestExchangeInit } from '@switchboard/core/testing'
import { createMaintenancePolicy, maintenance, MaintenanceError, maintenancePolicy, MaintenanceSwitch, maintenanceSwitch, parseMaintenanceOptions } from '../src/maintenance/index.ts'

async function run(layers: Middleware[], init: TestExchangeInit = {}) {
  const ex = createTestExchange(init)
  let forwarded = false
  await compose(layers, {
    terminal: (e) => {
      forwarded = true
      return e.respond(200, {}, 'ok')
    },
  })(ex)
  return { ex, status: ex.sent?.status, headers: ex.sent?.headers ?? {}, text: ex.sent?.text ?? '', forwarded }
}

describe('maintenance', () => {
  it('answers 503 ERR_MAINTENANCE with Retry-After in whole seconds and forwards nothing', async () => {
    const r = await run([maintenance({ retryAfterMs: 120_000, switch: new MaintenanceSwitch() })])
    expect(r.status).toBe(503)
    expect(r.forwarded).toBe(false)
    expect(r.headers['retry-after']).toBe('120')
    expect(r.headers['content-type']).toMatch(/^application\/json/)
    expect(JSON.parse(r.text)).toEqual({ error: { code: 'ERR_MAINTENANCE', message: 'The service is down for maintenance' } })
    expect(r.ex.error).toBeInstanceOf(MaintenanceError)
    // Rounded up: 1.5 s is "retry in 2 s", never "retry now".
    expect((await run([maintenance({ retryAfterMs: 1500, switch: new MaintenanceSwitch() })])).headers['retry-after']).toBe('2')
    expect((await run([maintenance({ switch: new MaintenanceSwitch() })])).headers['retry-after']).toBeUndefined()
  })

  it('takes a status, a message or a verbatim body', async () => {
    const sw = new MaintenanceSwitch()
    const r = await run([maintenance({ status: 500, message: 'Back at 14:00', switch: sw })])
    expect(r.status).toBe(500)
    expect(JSON.parse(r.text).error).toEqual({ code: 'ERR_MAINTENANCE', message: 'Back at 14:00' })
    const page = await run([maintenance({ body: '<h1>Back soon</h1>', contentType: 'text/html; charset=utf-8', retryAfterMs: 60_000, switch: sw })])
    expect(page.status).toBe(503)
    expect(page.text).toBe('<h1>Back soon</h1>')
    expect(page.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'retry-after': '60', 'cache-control': 'no-store' })
    expect(() => maintenance({ status: 200 })).toThrow(RangeError)
    expect(() => maintenance({ status: 600 })).toThrow(RangeError)
  })

  it('lets everything through when disabled', async () => {
    const r = await run([maintenance({ enabled: false, switch: new MaintenanceSwitch() })])
    expect(r.status).toBe(200)
    expect(r.forwarded).toBe(true)
    expect(r.headers['retry-after']).toBeUndefined()
  })

  it('bypasses by client address (IPv4, IPv6, IPv4-mapped) and by secret header, which is not forwarded', async () => {
    const layer = maintenance({ bypass: { ips: ['10.0.0.0/8', '2001:db8::/32'], headers: { 'X-Maintenance-Key': 's3cret' } }, switch: new MaintenanceSwitch() })
    expect((await run([layer], { clientIp: '10.1.2.3' })).status).toBe(200)
    expect((await run([layer], { clientIp: '::ffff:10.1.2.3' })).status).toBe(200)
    expect((await run([layer], { clientIp: '2001:db8::1' })).status).toBe(200)
    expect((await run([layer], { clientIp: '11.0.0.1' })).status).toBe(503)
    const keyed = await run([layer], { clientIp: '11.0.0.1', headers: { 'x-maintenance-key': 's3cret' } })
    expect(keyed.status).toBe(200)
    expect(keyed.ex.upstreamHeaders).toHaveProperty('x-maintenance-key', undefined)
    for (const wrong of ['s3cre', 's3cret!', 'S3CRET', '', 's3cres']) {
      expect((await run([layer], { clientIp: '11.0.0.1', headers: { 'x-maintenance-key': wrong } })).status, wrong).toBe(503)
    }
    // Off, the header is still kept from the upstream.
    const off = maintenance({ enabled: false, bypass: { headers: { 'x-maintenance-key': 's3cret' } }, switch: new MaintenanceSwitch() })
    expect((await run([off], { headers: { 'x-maintenance-key': 'anything' } })).ex.upstreamHeaders).toHaveProperty('x-maintenance-key', undefined)
  })

  it('is switched at run time through its switch; a reload that changes enabled takes over again', async () => {
    const sw = new MaintenanceSwitch()
    const a = maintenance({ enabled: false, name: 'closed', switch: sw })
    const other = maintenance({ enabled: false, name: 'other', switch: sw })
    expect((await run([a])).status).toBe(200)
    expect(sw.set(true, 'closed')).toEqual(['closed'])
    expect((await run([a])).status).toBe(503)
    expect((await run([other])).status).toBe(200)
    expect(sw.get('closed')).toEqual({ name: 'closed', enabled: true, configured: false, override: true })
    expect(sw.set(true, 'nope')).toEqual([])
    // A reload with the same configured value keeps the override…
    const b = maintenance({ enabled: false, name: 'closed', switch: sw })
    expect((await run([b])).status).toBe(503)
    expect((await run([a])).status).toBe(503)
    // …one that changes it wins, for old and new layers alike.
    maintenance({ enabled: true, name: 'closed', switch: sw })
    expect(sw.get('closed')?.override).toBeUndefined()
    expect((await run([a])).status).toBe(503)
    expect(sw.set(false)).toEqual(['closed', 'other'])
    expect((await run([a])).status).toBe(200)
    expect(sw.set(undefined, 'closed')).toEqual(['closed'])
    expect((await run([a])).status).toBe(503)
    expect(sw.list().map((s) => [s.name, s.enabled])).toEqual([
      ['closed', true],
      ['other', false],
    ])
    sw.retain(['other'])
    expect(sw.get('closed')).toBeUndefined()
  })

  it('the policy types register under the instance name in their switch', async () => {
    const sw = new MaintenanceSwitch()
    const def = createMaintenancePolicy(sw)
    const log = () => {}
    const layer = def.create(def.parse({ enabled: false }, 'policies.closed'), { name: 'closed', log })
    expect((await run([layer])).status).toBe(200)
    sw.set(true, 'closed')
    expect((await run([layer])).status).toBe(503)
    const global = maintenancePolicy.create(maintenancePolicy.parse({}, 'policies.unit-global'), { name: 'unit-global', log })
    expect(maintenanceSwitch.isEnabled('unit-global')).toBe(true)
    expect((await run([global])).status).toBe(503)
    maintenanceSwitch.set(false, 'unit-global')
    expect((await run([global])).status).toBe(200)
    maintenanceSwitch.retain([])
  })

  it('parses config with key paths', () => {
    expect(parseMaintenanceOptions({ retryAfter: '2m', bypass: { ips: ['::1'], headers: { 'X-Key': 'v' } } }, 'policies.closed')).toEqual({
      enabled: true,
      status: 503,
      message: undefined,
      body: undefined,
      contentType: undefined,
      retryAfterMs: 120_000,
      bypass: { ips: ['::1'], headers: { 'x-key': 'v' } },
    })
    const at = 'policies.closed'
    expect(() => maintenancePolicy.parse({ status: 404 }, at)).toThrow(/policies\.closed\.status/)
    expect(() => maintenancePolicy.parse({ status: 600 }, at)).toThrow(/policies\.closed\.status: expected a 5xx status/)
    expect(() => maintenancePolicy.parse({ retryAfter: 'soon' }, at)).toThrow(/policies\.closed\.retryAfter: expected a duration/)
    expect(() => maintenancePolicy.parse({ enabled: 'yes' }, at)).toThrow(/policies\.closed\.enabled/)
    expect(() => maintenancePolicy.parse({ message: 'a', body: 'b' }, at)).toThrow(/policies\.closed\.body: expected either body or message/)
    expect(() => maintenancePolicy.parse({ bypass: { ips: ['10.0.0.0/8', 'x'] } }, at)).toThrow(/policies\.closed\.bypass\.ips\[1\]/)
    expect(() => maintenancePolicy.parse({ bypass: { headers: { 'bad name': 'x' } } }, at)).toThrow(/policies\.closed\.bypass\.headers\.bad name/)
    expect(() => maintenancePolicy.parse({ bypass: { headers: { 'x-key': '' } } }, at)).toThrow(/policies\.closed\.bypass\.headers\.x-key/)
    expect(() => maintenancePolicy.parse({ bypass: { cookie: 'x' } }, at)).toThrow(/policies\.closed\.bypass\.cookie/)
    expect(() => maintenancePolicy.parse({ retry: '2m' }, at)).toThrow(ConfigError)
  })
})
