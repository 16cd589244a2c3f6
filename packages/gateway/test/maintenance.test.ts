import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
// Relative until the lead exports it from @switchboard/policies.
import { maintenancePolicy, maintenanceSwitch } from '@switchboard/policies'
import { createGateway, type Gateway, GatewayRegistry, parseConfig } from '../src/index.ts'
import { startGateway, type TestUpstream, useFixtures } from './helpers.ts'

const { cleanup, upstream } = useFixtures()
afterEach(() => maintenanceSwitch.retain([]))

function registry(): GatewayRegistry {
  const r = new GatewayRegistry()
  // Until the lead lists maintenance in builtinPolicies, register it here (the process-wide switch either way).
  if (!r.policy(maintenancePolicy.name)) r.registerPolicy(maintenancePolicy)
  return r
}

async function start(raw: Record<string, unknown>, env: Record<string, string> = {}): Promise<{ gateway: Gateway; port: number; reg: GatewayRegistry }> {
  const reg = registry()
  const gateway = await createGateway(parseConfig(raw, { registry: reg, env }), { logger: () => {}, registry: reg })
  cleanup.push(() => gateway.close())
  return { gateway, port: (await gateway.listen(0, '127.0.0.1')).port, reg }
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
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

/** Routes /api/* (with `routePolicies`) and /other/*, server policies `serverPolicies`. */
function config(up: TestUpstream, policies: Record<string, unknown>, serverPolicies: string[], routePolicies: string[] = [], server: Record<string, unknown> = {}) {
  return {
    server: { shutdownTimeout: '1s', policies: serverPolicies, ...server },
    policies,
    upstreams: { backend: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'backend', policies: routePolicies },
      { name: 'other', match: { path: '/other/*' }, upstream: 'backend' },
    ],
  }
}

describe('maintenance over real sockets', () => {
  it('answers 503 with Retry-After: 120 and the JSON body, forwarding nothing', async () => {
    const up = await upstream()
    const { port } = await start(config(up, { closed: { use: 'maintenance', enabled: true, retryAfter: '2m' } }, ['closed']))
    const r = await get(port, '/api/x')
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toBe('120')
    expect(r.headers['content-type']).toMatch(/^application\/json/)
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_MAINTENANCE', message: 'The service is down for maintenance' } })
    // Global: before routing, so even an unknown path gets the maintenance answer, not a 404.
    expect((await get(port, '/nowhere')).status).toBe(503)
    expect(up.requests).toHaveLength(0)
  })

  it('per route closes only that route; global closes everything', async () => {
    const up = await upstream()
    const policies = { 'api-closed': { use: 'maintenance' }, 'all-closed': { use: 'maintenance', enabled: false } }
    const { port } = await start(config(up, policies, ['all-closed'], ['api-closed']))
    expect((await get(port, '/api/x')).status).toBe(503)
    expect((await get(port, '/other/x')).status).toBe(200)
    expect(up.requests.map((r) => r.url)).toEqual(['/other/x'])
    // The runtime switch (what POST /admin/maintenance calls): the global instance on, then off.
    expect(maintenanceSwitch.set(true, 'all-closed')).toEqual(['all-closed'])
    expect((await get(port, '/other/x')).status).toBe(503)
    maintenanceSwitch.set(false)
    expect((await get(port, '/api/x')).status).toBe(200)
    expect((await get(port, '/other/x')).status).toBe(200)
  })

  it('lets bypassing clients through: a secret header from ${ENV} (not forwarded) and listed addresses', async () => {
    const up = await upstream()
    const policies = { closed: { use: 'maintenance', bypass: { headers: { 'x-maintenance-key': '${MAINT_KEY}' } } } }
    const { port } = await start(config(up, policies, ['closed']), { MAINT_KEY: 'open-sesame' })
    expect((await get(port, '/api/a', { 'x-maintenance-key': 'open-sesam' })).status).toBe(503)
    expect((await get(port, '/api/a', { 'x-maintenance-key': '${MAINT_KEY}' })).status).toBe(503)
    const pass = await get(port, '/api/a', { 'x-maintenance-key': 'open-sesame' })
    expect(pass.status).toBe(200)
    expect(up.requests).toHaveLength(1)
    expect(up.requests[0].headers['x-maintenance-key']).toBeUndefined()

    const byIp = await start(config(up, { closed: { use: 'maintenance', bypass: { ips: ['127.0.0.0/8'] } } }, ['closed']))
    expect((await get(byIp.port, '/api/b')).status).toBe(200)
    const other = await start(config(up, { closed: { use: 'maintenance', bypass: { ips: ['10.0.0.0/8'] } } }, ['closed']))
    expect((await get(other.port, '/api/c')).status).toBe(503)
    // Behind a trusted proxy the forwarded client decides, as for every policy.
    const proxied = await start(config(up, { closed: { use: 'maintenance', bypass: { ips: ['10.0.0.0/8'] } } }, ['closed'], [], { trustedProxies: ['127.0.0.1'] }))
    expect((await get(proxied.port, '/api/d', { 'x-forwarded-for': '10.1.2.3' })).status).toBe(200)
    expect((await get(proxied.port, '/api/d', { 'x-forwarded-for': '192.0.2.1' })).status).toBe(503)
  })

  it('is switched off and on by a hot reload of the config', async () => {
    const up = await upstream()
    const on = config(up, { closed: { use: 'maintenance', retryAfter: '30s' } }, ['closed'])
    const off = config(up, { closed: { use: 'maintenance', enabled: false, retryAfter: '30s' } }, ['closed'])
    const { gateway, port, reg } = await start(on)
    const first = await get(port, '/api/x')
    expect(first.status).toBe(503)
    expect(first.headers['retry-after']).toBe('30')
    await gateway.reload(parseConfig(off, { registry: reg }))
    const open = await get(port, '/api/x')
    expect(open.status).toBe(200)
    expect(open.headers['retry-after']).toBeUndefined()
    await gateway.reload(parseConfig(on, { registry: reg }))
    expect((await get(port, '/api/x')).status).toBe(503)
  })

  it('an admin override survives a reload that leaves enabled alone, and yields to one that changes it', async () => {
    const up = await upstream()
    const off = config(up, { closed: { use: 'maintenance', enabled: false } }, ['closed'])
    const on = config(up, { closed: { use: 'maintenance', enabled: true } }, ['closed'])
    const { gateway, port, reg } = await start(off)
    maintenanceSwitch.set(true, 'closed')
    expect((await get(port, '/api/x')).status).toBe(503)
    await gateway.reload(parseConfig(off, { registry: reg }))
    expect((await get(port, '/api/x')).status).toBe(503)
    maintenanceSwitch.set(false, 'closed')
    expect((await get(port, '/api/x')).status).toBe(200)
    await gateway.reload(parseConfig(on, { registry: reg }))
    expect((await get(port, '/api/x')).status).toBe(503)
  })

  it('a custom status and message', async () => {
    const up = await upstream()
    const { port } = await start(config(up, { closed: { use: 'maintenance', status: 502, message: 'Back at 14:00 UTC' } }, [], ['closed']))
    const r = await get(port, '/api/x')
    expect(r.status).toBe(502)
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_MAINTENANCE', message: 'Back at 14:00 UTC' } })
    expect((await get(port, '/other/x')).status).toBe(200)
  })
})

describe('admin API', () => {
  it('POST /admin/maintenance switches an instance on and back to config; GET lists them', async () => {
    const up = await upstream()
    const gw = await startGateway({
      admin: true,
      policies: { window: { use: 'maintenance', enabled: false, retryAfter: '30s' } },
      server: { policies: ['window'] },
      upstreams: { a: { targets: [up.url] } },
      routes: [{ name: 'a', match: { path: '/*' }, upstream: 'a' }],
    })
    cleanup.push(async () => {
      maintenanceSwitch.set(undefined)
      await gw.close()
    })
    expect((await fetch(`${gw.url}/x`)).status).toBe(200)
    const on = await fetch(`${gw.url}/admin/maintenance`, { method: 'POST', body: JSON.stringify({ on: true, policy: 'window' }) })
    expect(on.status).toBe(200)
    expect((await on.json()).changed).toEqual(['window'])
    const closed = await fetch(`${gw.url}/x`)
    expect(closed.status).toBe(503)
    expect(closed.headers.get('retry-after')).toBe('30')
    // The admin API runs after server policies: while a server-wide maintenance is on, it answers
    // 503 too (use `bypass.ips` for the operators' addresses to keep it reachable).
    const listed = await fetch(`${gw.url}/admin/maintenance`)
    expect([200, 503]).toContain(listed.status)
    const unknown = await fetch(`${gw.url}/admin/maintenance`, { method: 'POST', body: JSON.stringify({ on: true, policy: 'nope' }) })
    expect([404, 503]).toContain(unknown.status)
    maintenanceSwitch.set(undefined, 'window')
    expect((await fetch(`${gw.url}/x`)).status).toBe(200)
    const bad = await fetch(`${gw.url}/admin/maintenance`, { method: 'POST', body: '{"on":"yes"}' })
    expect(bad.status).toBe(400)
    const gone = await fetch(`${gw.url}/admin/maintenance`, { method: 'POST', body: JSON.stringify({ on: false, policy: 'nope' }) })
    expect(gone.status).toBe(404)
  })
})
