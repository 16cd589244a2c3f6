// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { MetricsRegistry } from '../../src/index.ts'

const registry = new MetricsRegistry()
registry.gauge('up', 'Whether the service is up.').set(1)

const handle = (request: Request): Response =>
  new URL(request.url).pathname === '/metrics'
    ? new Response(registry.exposition(), { headers: { 'content-type': registry.contentType } })
    : new Response('not found', { status: 404 })

const response = handle(new Request('http://gateway.local/metrics'))
console.log(response.status, response.headers.get('content-type')) // 200 text/plain; version=0.0.4; charset=utf-8
console.log(JSON.stringify(await response.text())) // "# HELP up Whether the service is up.\n# TYPE up gauge\nup 1\n"
