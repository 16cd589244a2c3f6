// Starts a throwaway redis-server on a free loopback port for tests and benchmarks.
// Used by @switchboard/store, cache and gateway tests. CI installs it: apt-get install -y redis-server
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { delimiter, join } from 'node:path'

const INSTALL_HINT = 'redis-server is not installed or not on PATH: apt-get install -y redis-server (CI installs it)'

/** True when a `redis-server` binary is on PATH (or REDIS_SERVER points at one). */
export function redisServerInstalled() {
  return findRedisServer() !== undefined
}

/**
 * Spawns `redis-server` on 127.0.0.1 with persistence off and waits until it answers PING.
 * Pass `port` to restart on the same port (reconnect tests); otherwise a free one is picked.
 */
export async function startRedis(options = {}) {
  const bin = findRedisServer()
  if (bin === undefined) throw new Error(INSTALL_HINT)
  let lastError
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port ?? (await freePort())
    try {
      return await launch(bin, port)
    } catch (err) {
      lastError = err
      if (options.port !== undefined && attempt >= 2) break // a fixed port that stays busy will not get better
      if (options.port !== undefined) await sleep(100)
    }
  }
  throw lastError
}

async function launch(bin, port) {
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const collect = (chunk) => {
    if (output.length < 4000) output += chunk
  }
  child.stdout.setEncoding('utf8').on('data', collect)
  child.stderr.setEncoding('utf8').on('data', collect)
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', (error) => resolve({ error }))
  })
  let gone
  exited.then((result) => {
    gone = result
  })
  const stop = async () => {
    if (gone === undefined) child.kill('SIGTERM')
    await exited
  }
  for (let i = 0; i < 200; i++) {
    if (gone !== undefined) {
      if (gone.error?.code === 'ENOENT') throw new Error(INSTALL_HINT)
      throw new Error(`redis-server exited before answering on port ${port}: ${gone.error?.message ?? output.trim().slice(-500)}`)
    }
    if (await ping(port)) return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid, stop }
    await sleep(25)
  }
  await stop()
  throw new Error(`redis-server did not answer PING on port ${port} within 5 s`)
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const finish = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => finish(false))
    socket.once('error', () => finish(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'))
    })
  })
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function findRedisServer() {
  const explicit = process.env.REDIS_SERVER
  if (explicit) return existsSync(explicit) ? explicit : undefined
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, 'redis-server')
    if (existsSync(candidate)) return candidate
  }
  for (const candidate of ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server']) {
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
