// Smoke test of the *built, packed* packages (copied next to them by scripts/smoke-prepare.mjs).
// Runs unchanged on Node, Bun and Deno: each check prints "smoke ok: NAME" or "smoke FAILED: NAME: why".
import { createServer } from 'node:http'

const runtime = typeof globalThis.Bun !== 'undefined' ? 'bun' : typeof globalThis.Deno !== 'undefined' ? 'deno' : `node ${process.version}`
let failures = 0

async function check(name, fn) {
  try {
    await fn()
    console.log(`smoke ok: ${name}`)
  } catch (err) {
    failures++
    console.log(`smoke FAILED: ${name}: ${err?.stack ?? err}`)
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message)
}

console.log(`smoke test of built packages on ${runtime}`)

await check('core', async () => {
  const core = await import('@switchboard/core')
  assert(new core.BadGatewayError().status === 502, 'BadGatewayError status')
  assert(core.parseDuration('2s') === 2000 && core.parseSize('16kb') === 16384, 'units')
})

await check('matcher', async () => {
  const { createMatcher, normalizePath } = await import('@switchboard/matcher')
  const m = createMatcher([{ name: 'user', match: { path: '/users/:id' }, data: 1 }])
  assert(m.match({ method: 'GET', path: '/users/42' })?.params.id === '42', 'param extracted')
  assert(normalizePath('/a/../b') === '/b', 'normalisation')
})

await check('balancer', async () => {
  const { createBalancer, createEndpoint } = await import('@switchboard/balancer')
  const eps = [createEndpoint({ url: 'http://a', weight: 1 }), createEndpoint({ url: 'http://b', weight: 3 })]
  const rr = createBalancer('round-robin')
  const counts = { 'http://a': 0, 'http://b': 0 }
  const request = { method: 'GET', target: '/', headers: {}, clientIp: '127.0.0.1' }
  for (let i = 0; i < 40; i++) counts[rr.pick(eps, request).url]++
  assert(counts['http://a'] === 10 && counts['http://b'] === 30, `weights ${JSON.stringify(counts)}`)
  const { describeBalancer } = await import('@switchboard/balancer/conformance').catch(() => ({}))
  assert(typeof describeBalancer === 'function', 'conformance subpath export')
})

await check('health-checker', async () => {
  const { createHealthChecker } = await import('@switchboard/health-checker')
  const { createEndpoint } = await import('@switchboard/balancer')
  const checker = createHealthChecker({ endpoints: [createEndpoint({ url: 'http://127.0.0.1:1' })] })
  assert(checker.healthy().length === 1, 'healthy by default')
  await checker.stop()
})

await check('store', async () => {
  const { memoryStore, encodeText, decodeText } = await import('@switchboard/store')
  const store = memoryStore()
  await store.set('k', encodeText('v'))
  assert(decodeText(await store.get('k')) === 'v', 'memory round trip')
  assert((await store.increment('n')) === 1, 'increment')
  await store.close()
  const { sqliteStore } = await import('@switchboard/store/sqlite')
  assert(typeof sqliteStore === 'function', 'sqlite subpath export')
})

await check('cache', async () => {
  const { createHttpCache, freshnessLifetime } = await import('@switchboard/cache')
  const { memoryStore } = await import('@switchboard/store')
  assert(typeof createHttpCache({ store: memoryStore() }).middleware() === 'function', 'middleware')
  assert(typeof freshnessLifetime === 'function', 'policy export')
})

await check('discovery', async () => {
  const { createDiscovery, importLegacyConfig, isLegacyConfig, payloadHash } = await import('@switchboard/discovery')
  const legacy = { 'http://127.0.0.1:3000': { cache_timeout: 60, endpoints: { '/a': { payload: [{ x: 1 }] } } } }
  assert(isLegacyConfig(legacy), 'legacy detection')
  assert(importLegacyConfig(legacy).discovery.endpoints[0] === 'http://127.0.0.1:3000', 'legacy import')
  assert((await payloadHash(new TextEncoder().encode('{"b":1,"a":2}'))) === (await payloadHash(new TextEncoder().encode('{"a":2,"b":1}'))), 'order-insensitive hash')
  assert(typeof createDiscovery === 'function', 'createDiscovery export')
})

await check('websocket-tunnel', async () => {
  const ws = await import('@switchboard/websocket-tunnel')
  assert(typeof ws.tunnelUpgrade === 'function' && typeof ws.isWebSocketUpgrade === 'function', 'exports')
})

await check('core pipeline + policies + core/testing', async () => {
  const { compose } = await import('@switchboard/core')
  const { createTestExchange } = await import('@switchboard/core/testing')
  const { requestId, builtinPolicies } = await import('@switchboard/policies')
  assert(builtinPolicies.some((p) => p.name === 'rate-limit') && builtinPolicies.some((p) => p.name === 'request-id'), 'built-in policy types')
  const ex = createTestExchange()
  await compose([requestId({ generate: () => 'id-1' })], { terminal: () => Promise.reject(new Error('boom')) })(ex)
  assert(ex.sent?.status === 500 && ex.sent.headers['x-request-id'] === 'id-1', 'error decorated inside the chain')
})

await check('auth: built-in schemes, api-key through authenticate()', async () => {
  const { compose } = await import('@switchboard/core')
  const { createTestExchange } = await import('@switchboard/core/testing')
  const { authenticate, createApiKeyAuthenticator, builtinAuthPolicies, hashApiKey } = await import('@switchboard/auth')
  assert(['api-key', 'jwt', 'basic'].every((n) => builtinAuthPolicies.some((p) => p.name === n)), 'built-in auth policy types')
  const layer = authenticate([createApiKeyAuthenticator({ header: 'x-api-key', keys: [{ id: 'smoke', hash: await hashApiKey('smoke-key-0123456789') }] })])
  const ok = createTestExchange({ headers: { 'x-api-key': 'smoke-key-0123456789' } })
  await compose([layer], { terminal: (e) => e.respond(200, {}, 'in') })(ok)
  assert(ok.sent?.status === 200 && ok.upstreamHeaders['x-auth-subject'] === 'smoke' && ok.upstreamHeaders['x-api-key'] === undefined, 'key accepted, identity set, credential removed')
  const bad = createTestExchange({ headers: { 'x-api-key': 'wrong' } })
  await compose([layer], { terminal: (e) => e.respond(200, {}, 'in') })(bad)
  assert(bad.sent?.status === 401 && bad.sent.headers['www-authenticate'], 'wrong key: 401 with a challenge')
})

await check('proxy-pass + gateway: proxy a request end to end', async () => {
  const { createGateway, parseConfig } = await import('@switchboard/gateway')
  const upstream = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`hello ${req.url} via ${req.headers.via}`)
  })
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r))
  const gateway = await createGateway(
    parseConfig({
      policies: { trace: { use: 'request-id' } },
      server: { shutdownTimeout: '1s', policies: ['trace'] },
      upstreams: { up: { targets: [`http://127.0.0.1:${upstream.address().port}`] } },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'up' }],
    }),
    { logger: () => {} },
  )
  const { port } = await gateway.listen(0, '127.0.0.1')
  try {
    const res = await fetch(`http://127.0.0.1:${port}/smoke?x=1`)
    const text = await res.text()
    assert(res.status === 200, `status ${res.status}`)
    assert(text === 'hello /smoke?x=1 via 1.1 switchboard', `body ${text}`)
    assert(res.headers.get('x-request-id'), 'server policy from the built policies package')
  } finally {
    await gateway.close()
    upstream.closeAllConnections?.()
    await new Promise((r) => upstream.close(r))
  }
})

console.log(`smoke ${failures === 0 ? 'passed' : 'failed'} on ${runtime}`)
process.exit(failures === 0 ? 0 : 1)
