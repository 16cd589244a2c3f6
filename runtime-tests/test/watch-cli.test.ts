// `--watch` on the *built* CLI: editing the config file reloads it, for a single gateway and for a
// `server.workers` fleet (whose primary rolls the reload through its workers).
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { RUNTIME, startGatewayProcess } from './harness.ts'

const cleanup: Array<() => Promise<unknown>> = []
afterAll(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
})

async function upstream(): Promise<number> {
  const server: Server = createServer((req, res) => res.end(`up ${req.url}`))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(() => new Promise((r) => server.close(r)))
  return (server.address() as AddressInfo).port
}

const yaml = (port: number, paths: string[], workers: number): string => `server: { host: 127.0.0.1, port: 8080, workers: ${workers} }
upstreams:
  up: { targets: [http://127.0.0.1:${port}] }
routes:
${paths.map((p) => `  - { name: r${p.slice(1)}, match: { path: ${p} }, upstream: up }`).join('\n')}
`

async function status(url: string): Promise<number> {
  const res = await fetch(url)
  await res.arrayBuffer()
  return res.status
}

/** Polls until `url` answers `want` or 15 s pass; returns the last status. */
async function waitFor(url: string, want: number): Promise<number> {
  const deadline = Date.now() + 15_000
  let last = 0
  while (Date.now() < deadline) {
    last = await status(url).catch(() => 0)
    if (last === want) return last
    await new Promise((r) => setTimeout(r, 50))
  }
  return last
}

describe(`--watch on the built CLI (${RUNTIME})`, () => {
  for (const workers of [1, 2]) {
    // server.workers > 1 is refused on Deno (see packages/gateway README, Workers).
    it.skipIf(workers > 1 && RUNTIME === 'deno')(`an edited config file is reloaded (server.workers: ${workers})`, async () => {
      const port = await upstream()
      const gw = await startGatewayProcess(yaml(port, ['/a'], workers), {}, ['--watch'])
      cleanup.push(() => gw.stop())
      const file = gw.child.spawnargs[gw.child.spawnargs.indexOf('--config') + 1]
      expect(await status(`${gw.url}/a`)).toBe(200)
      expect(await status(`${gw.url}/b`)).toBe(404)
      writeFileSync(file, yaml(port, ['/a', '/b'], workers))
      expect(await waitFor(`${gw.url}/b`, 200)).toBe(200)
      // Every worker serves the new route, not only the one that answered first.
      for (let i = 0; i < 10; i++) expect(await status(`${gw.url}/b?i=${i}`)).toBe(200)
      expect(gw.output()).toMatch(/watch/)
    }, 60_000)
  }
})
