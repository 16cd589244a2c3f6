import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { cleanup, defer, proxyServer, request } from './helpers.ts'

afterEach(cleanup)

/**
 * A listening port whose accept queue is full, so a new connect never completes: a child `node`
 * listens with backlog 1 and is then stopped (SIGSTOP), and two connections fill its queue. The
 * kernel drops further SYNs, which is what a black-holed upstream looks like.
 */
async function stalledPort(): Promise<number> {
  const child: ChildProcess = spawn(
    'node',
    ['-e', "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  defer(() => {
    child.kill('SIGKILL')
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())))
  })
  child.kill('SIGSTOP')
  const fillers: net.Socket[] = []
  defer(() => fillers.forEach((socket) => socket.destroy()))
  for (let i = 0; i < 2; i++) {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    fillers.push(socket)
    await new Promise((resolve) => socket.once('connect', resolve))
  }
  return port
}

it.skipIf(process.platform !== 'linux')('a connect that does not complete within connectTimeoutMs → 504 phase connect', async () => { // relies on Linux dropping SYNs when the accept queue is full
  const port = await stalledPort()
  const proxy = await proxyServer(`http://127.0.0.1:${port}`, {}, { connectTimeoutMs: 200 })
  const res = await request(proxy.url)
  expect(res.status).toBe(504)
  expect(JSON.parse(res.body.toString()).error).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT', phase: 'connect' })
})
