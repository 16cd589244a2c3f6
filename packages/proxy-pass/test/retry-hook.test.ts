import { afterEach, describe, expect, it } from 'vitest'
import { forward } from '../src/index.ts'
import { RETRYABLE_STATUS_CODE } from '../src/forward.ts'
import { cleanup, httpServer, proxyServer, request } from './helpers.ts'

afterEach(cleanup)

describe('forward shouldRetry hook', () => {
  it('discards a response the hook asks to retry: nothing written, rejects with its status and headers', async () => {
    const upstream = await httpServer((_req, res) => {
      res.writeHead(503, { 'retry-after': '1', 'content-type': 'text/plain' }).end('busy')
    })
    const seen: number[] = []
    const proxy = await proxyServer(upstream.url, {
      shouldRetry: (status) => {
        seen.push(status)
        return status === 503
      },
    })
    // The fixture answers a rejection with the error's own status and JSON body.
    const res = await request(proxy.url)
    expect(res.status).toBe(503)
    expect(JSON.parse(res.body.toString()).error.code).toBe(RETRYABLE_STATUS_CODE)
    const outcome = (await proxy.next()) as Error & { code: string; status: number; headers: Record<string, string> }
    expect(outcome).toBeInstanceOf(Error)
    expect(outcome.code).toBe(RETRYABLE_STATUS_CODE)
    expect(outcome.status).toBe(503)
    expect(outcome.headers['retry-after']).toBe('1')
    expect(seen).toEqual([503])
  })

  it('relays the response when the hook says no', async () => {
    const upstream = await httpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('busy')
    })
    const proxy = await proxyServer(upstream.url, { shouldRetry: () => false })
    const res = await request(proxy.url)
    expect(res.status).toBe(503)
    expect(res.body.toString()).toBe('busy')
    expect(await proxy.next()).toMatchObject({ status: 503, aborted: false })
  })

  it('lets a caller retry on another upstream before the client sees a byte', async () => {
    const bad = await httpServer((_req, res) => res.writeHead(502).end('bad'))
    const good = await httpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('good'))
    const { createUpstreamPool } = await import('../src/index.ts')
    const pools = [createUpstreamPool(bad.url), createUpstreamPool(good.url)]
    const front = await httpServer(async (req, res) => {
      for (const [i, pool] of pools.entries()) {
        try {
          await forward(req, res, { pool, body: new Uint8Array(0), shouldRetry: (status) => i === 0 && status >= 500 })
          return
        } catch (err) {
          if ((err as { code?: string }).code !== RETRYABLE_STATUS_CODE) throw err
        }
      }
    })
    try {
      const res = await request(front.url)
      expect(res.status).toBe(200)
      expect(res.body.toString()).toBe('good')
    } finally {
      await Promise.all(pools.map((p) => p.destroy()))
    }
  })
})
