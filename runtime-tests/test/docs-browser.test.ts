// A real Chromium loads /docs from the *built* CLI (run by the runtime running this test) with every
// request that leaves 127.0.0.1 blocked: the page must render the gateway's operations from its
// own files only, without a console error, and "Try it out" must reach a configured route.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { RUNTIME, startGatewayProcess } from './harness.ts'
import { hasChromium, useChromium } from '../../scripts/chromium.mjs'


const SECRET = 'sk-docs-browser-upstream-0123456789'
const CLIENT_KEY = 'client-docs-browser-0123456789'

const browserOf = useChromium()

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!()
})

async function upstream(seen: string[]): Promise<number> {
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url}`)
    const body = JSON.stringify({ upstream: 'users', url: req.url })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
  )
  return (server.address() as AddressInfo).port
}

function yaml(port: number): string {
  return `server:
  host: 127.0.0.1
  shutdownTimeout: 2s
upstreams:
  backend:
    targets:
      - url: http://127.0.0.1:${port}
targets:
  llm:
    baseUrl: http://127.0.0.1:${port}
secrets:
  llm_key: "Bearer ${SECRET}"
clients:
  app:
    key: ${CLIENT_KEY}
    target: llm
    authHeaderRef: llm_key
    allowedMethods: [POST]
    allowedPaths: [/chat/completions]
docs:
  title: Browser docs
routes:
  - name: users
    match: { path: /users/:id, methods: [GET] }
    upstream: backend
`
}

describe(`docs page of the built CLI on ${RUNTIME}, in Chromium`, () => {
  // Skipped only where /usr/bin/chromium is missing outside CI (CI throws above instead).
  it.skipIf(!hasChromium)('renders the operations offline, without console errors, and Try it out reaches the route', async () => {
    const seen: string[] = []
    const port = await upstream(seen)
    const gw = await startGatewayProcess(yaml(port))
    cleanup.push(() => gw.stop('SIGKILL'))

    const context = await browserOf()!.newContext()
    cleanup.push(() => context.close())
    const requested: string[] = []
    const blocked: string[] = []
    await context.route('**', (route) => {
      const url = new URL(route.request().url())
      requested.push(url.href)
      if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:' || url.protocol === 'wss:') && url.hostname === '127.0.0.1') return route.continue()
      blocked.push(url.href)
      return route.abort('blockedbyclient')
    })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text())
    })
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
    const failed: string[] = []
    page.on('requestfailed', (req) => failed.push(`${req.url()} ${req.failure()?.errorText ?? ''}`))

    const res = await page.goto(`${gw.url}/docs`)
    expect(res?.status()).toBe(200)
    await page.waitForSelector('.opblock-summary', { timeout: 30_000 })
    await expect.poll(() => page.locator('.info .title').first().textContent(), { timeout: 10_000 }).toContain('Browser docs')
    const operations = await page.$$eval('.opblock-summary', (els) =>
      els.map((el) => `${el.querySelector('.opblock-summary-method')?.textContent?.trim()} ${el.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? ''}`),
    )
    expect(operations).toEqual(expect.arrayContaining(['POST /proxy', 'GET /users/{id}', 'GET /health']))

    // Try it out on the configured route: the request goes to the gateway (same origin) and on to the upstream.
    const users = page.locator('.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/users/{id}"]') })
    await users.locator('.opblock-summary').click()
    await users.getByRole('button', { name: 'Try it out' }).click()
    await users.locator('input[placeholder="id"]').fill('42')
    await users.getByRole('button', { name: 'Execute' }).click()
    await expect.poll(() => users.locator('.live-responses-table tbody .response-col_status').first().textContent(), { timeout: 10_000 }).toContain('200')
    expect(await users.locator('.live-responses-table tbody .response-col_description').first().textContent()).toContain('"upstream": "users"')
    expect(seen).toEqual(['GET /users/42'])

    expect(errors).toEqual([])
    expect(blocked).toEqual([])
    expect(failed).toEqual([])
    expect(requested.length).toBeGreaterThan(3)
    expect(requested.every((u) => new URL(u).host === `127.0.0.1:${gw.port}`)).toBe(true)
    expect(requested).toEqual(expect.arrayContaining([`${gw.url}/docs/swagger-ui-bundle.js`, `${gw.url}/docs/init.js`, `${gw.url}/openapi.json`]))
    const text = await page.content()
    expect(text).not.toContain(SECRET)
    expect(text).not.toContain(CLIENT_KEY)
  }, 90_000)
})
