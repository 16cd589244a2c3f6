// Copied from README.md (the TypeScript block of the same number); test/readme.test.ts fails when they differ.
import { MetricsRegistry } from '../../src/index.ts'

const registry = new MetricsRegistry({ prefix: 'myapp_' })
const requests = registry.counter('http_requests_total', 'Requests served.', ['route', 'status'])
const duration = registry.histogram('http_request_duration_seconds', 'Time to the last byte.', ['route'])

const ok = requests.labels('users', '200') // keep the child: inc() on it does no lookup at all
ok.inc()
ok.inc()
duration.labels('users').observe(0.042)

const text = registry.exposition()
console.log(text.split('\n').find((line) => line.startsWith('myapp_http_requests_total{'))) // myapp_http_requests_total{route="users",status="200"} 2
console.log(registry.contentType) // text/plain; version=0.0.4; charset=utf-8
