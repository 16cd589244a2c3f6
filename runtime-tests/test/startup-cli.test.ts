// What a failed start looks like through the built CLI: one line naming the problem, the right
// exit code (2 for configuration, 1 for the environment), no stack trace, nothing listening.
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RUNTIME, runCli, tempFile } from './harness.ts'

let busy: Server
let busyPort = 0
beforeAll(async () => {
  busy = createServer()
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
  busyPort = (busy.address() as { port: number }).port
})
afterAll(() => new Promise<void>((r) => busy.close(() => r())))

const config = (extra = '') => `${extra}
upstreams: { b: { targets: [http://127.0.0.1:9] } }
routes: [{ name: all, match: { path: /* }, upstream: b }]
`
const noStack = (output: string) => expect(output).not.toMatch(/^\s+at /m)

describe(`failed starts on ${RUNTIME}`, () => {
  it('a busy port: one line naming the address and how to change it, exit 1', async () => {
    const file = tempFile('busy.yaml', config())
    const { code, output } = await runCli(['--config', file, '--port', String(busyPort)])
    expect(code).toBe(1)
    expect(output).toContain(`switchboard: cannot listen on 127.0.0.1:${busyPort}: the address is in use (choose another with --port, PORT or server.port)`)
    expect(output).not.toContain('listening on')
    noStack(output)
  })

  it('a SQLite store file that is not a database: one line naming the file, exit 2', async () => {
    const db = tempFile('corrupt.db', 'this is not a database, just text that is long enough to have a header'.repeat(20))
    const file = tempFile('corrupt.yaml', config(`store: { driver: sqlite, path: ${db} }`))
    const { code, output } = await runCli(['--config', file, '--port', '0'])
    expect(code).toBe(2)
    expect(output).toMatch(new RegExp(`switchboard: sqlite store ${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: file is not a database`))
    noStack(output)
  })

  it('a config file that cannot be read: exit 2 naming it', async () => {
    const { code, output } = await runCli(['--config', '/nonexistent/gw.yaml'])
    expect(code).toBe(2)
    expect(output).toContain('switchboard: invalid config: /nonexistent/gw.yaml: (root): expected a readable config file (ENOENT)')
    noStack(output)
  })

  it('--host and --port override the file', async () => {
    const file = tempFile('flags.yaml', config('server: { host: 0.0.0.0, port: 1 }'))
    writeFileSync(file, config('server: { host: 0.0.0.0, port: 1 }'))
    const { code, output } = await runCli(['--config', file, '--host', '127.0.0.1', '--port', String(busyPort)])
    expect(code).toBe(1)
    expect(output).toContain(`cannot listen on 127.0.0.1:${busyPort}`)
  })
})
