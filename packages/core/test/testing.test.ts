// The contract of the core test kit (@switchboard/core/testing). The real-socket coverage is in the
// harnesses built on it: packages/cache/test/harness.ts and packages/discovery/test/harness.ts.
import { describe, expect, it } from 'vitest'
import type { HeaderRecord, ResponseTap } from '../src/index.ts'
import { createTestExchange, type TestResponseSink } from '../src/testing.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A stream of `chunks` that logs each pull, and optionally fails after them. */
function source(chunks: string[], log: string[], fail?: Error): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (const c of chunks) {
      log.push(`pull ${c}`)
      yield text(c)
    }
    if (fail) throw fail
  })()
}

/** A tap that logs what it sees; `keep` is what onHead answers. */
function loggingTap(log: string[], name: string, keep = true): ResponseTap {
  return {
    onHead: (status, headers) => {
      log.push(`${name} head ${status} ${String(headers['x-edit'])} ${String(headers['x-set'])}`)
      return keep
    },
    onData: (chunk) => void log.push(`${name} data ${new TextDecoder().decode(chunk)}`),
    onEnd: () => void log.push(`${name} end`),
    onAbort: (error) => void log.push(`${name} abort ${(error as Error).message}`),
  }
}

/** A sink that logs the head and every chunk it writes, yielding between writes like a socket. */
function loggingSink(log: string[], failAfter?: number): TestResponseSink {
  return async (status, headers, body) => {
    log.push(`write head ${status} ${String(headers['x-edit'])} ${String(headers['x-set'])}`)
    let n = 0
    for await (const chunk of body) {
      await new Promise((resolve) => setTimeout(resolve, 0))
      log.push(`write ${new TextDecoder().decode(chunk)}`)
      if (++n === failAfter) throw new Error('client closed')
    }
    log.push('write end')
  }
}

describe('createTestExchange: respond()', () => {
  it('records status, the edited head and the body', async () => {
    const ex = createTestExchange({ target: '/a?b=1', headers: { host: 'gw' } })
    expect(ex.request).toMatchObject({ method: 'GET', path: '/a', query: '?b=1', host: 'gw', protocol: 'http' })
    ex.onResponseHead((status, headers) => {
      headers['x-edit'] = `hook ${status}`
      headers['x-set'] = 'from hook'
      headers.server = undefined
    })
    ex.responseHeaders['x-set'] = 'from responseHeaders'
    expect(ex.responded).toBe(false)
    await ex.respond(201, { server: 'backend', 'content-type': 'text/plain' }, 'made')
    expect(ex.responded).toBe(true)
    // Hooks first, then responseHeaders (as the gateway applies them); undefined fields are dropped.
    expect(ex.sent).toEqual({
      status: 201,
      headers: { 'content-type': 'text/plain', 'x-edit': 'hook 201', 'x-set': 'from responseHeaders' },
      body: text('made'),
      text: 'made',
    })
    expect(ex.response).toEqual({ status: 201, headers: ex.sent?.headers })
  })

  it('throws when called twice, and deliver() after respond() throws too', async () => {
    const ex = createTestExchange()
    await ex.respond(204)
    await expect(ex.respond(200, {}, 'again')).rejects.toThrow(/after the response started/)
    await expect(ex.deliver({ status: 200, headers: {} })).rejects.toThrow(/after the response started/)
    expect(ex.sent?.status).toBe(204)
  })

  it('streams a body to onRespond, settling only when the sink is done', async () => {
    const log: string[] = []
    const ex = createTestExchange({ onRespond: loggingSink(log) })
    await ex.respond(200, { 'x-edit': 'e', 'x-set': 's' }, source(['a', 'b'], log))
    log.push('settled')
    expect(log).toEqual(['write head 200 e s', 'pull a', 'write a', 'pull b', 'write b', 'write end', 'settled'])
    expect(ex.sent?.text).toBe('ab')
  })

  it('rejects, recording nothing, when the sink fails', async () => {
    const ex = createTestExchange({ onRespond: loggingSink([], 1) })
    await expect(ex.respond(200, {}, source(['a', 'b'], []))).rejects.toThrow('client closed')
    expect(ex.responded).toBe(true)
    expect(ex.sent).toBeUndefined()
  })
})

describe('createTestExchange: readBody()', () => {
  it('returns a fixed body within the limit and fails with 413 past it', async () => {
    const ex = createTestExchange({ method: 'post', body: 'hello' })
    expect(ex.request.method).toBe('POST')
    expect(ex.bufferedBody).toBeUndefined()
    await expect(ex.readBody(4)).rejects.toMatchObject({ status: 413, code: 'ERR_PAYLOAD_TOO_LARGE' })
    expect(new TextDecoder().decode(await ex.readBody(5))).toBe('hello')
    expect(ex.bufferedBody).toEqual(text('hello'))
    expect(await createTestExchange().readBody(0)).toEqual(new Uint8Array(0))
  })

  it('reads a streamed body only when asked, once, and keeps it for forwarding', async () => {
    const log: string[] = []
    const ex = createTestExchange({ method: 'POST', body: source(['ab', 'cd'], log) })
    expect(log).toEqual([])
    expect(ex.bufferedBody).toBeUndefined()
    expect(new TextDecoder().decode(await ex.readBody(4))).toBe('abcd')
    expect(new TextDecoder().decode(await ex.readBody(10))).toBe('abcd')
    expect(log).toEqual(['pull ab', 'pull cd'])
    expect(ex.bufferedBody).toEqual(text('abcd'))
    // A smaller limit afterwards still holds.
    await expect(ex.readBody(3)).rejects.toMatchObject({ status: 413 })
  })

  it('stops pulling a streamed body at the chunk that crosses the limit', async () => {
    const log: string[] = []
    const ex = createTestExchange({ method: 'POST', body: source(['ab', 'cd', 'ef'], log) })
    await expect(ex.readBody(3)).rejects.toMatchObject({ status: 413, code: 'ERR_PAYLOAD_TOO_LARGE', details: { limit: 3 } })
    expect(log).toEqual(['pull ab', 'pull cd'])
    expect(ex.bufferedBody).toBeUndefined()
    // The stream is spent: a second read fails the same way instead of returning a partial body.
    await expect(ex.readBody(100)).rejects.toMatchObject({ status: 413 })
  })

  it('fails before reading when the declared Content-Length is past the limit', async () => {
    const log: string[] = []
    const ex = createTestExchange({ method: 'POST', headers: { 'content-length': '6' }, body: source(['abcdef'], log) })
    await expect(ex.readBody(5)).rejects.toMatchObject({ status: 413 })
    expect(log).toEqual([])
  })
})

describe('createTestExchange: fetchUpstream()', () => {
  it('asks init.upstream with the overrides and the exchange, counting calls', async () => {
    const seen: unknown[] = []
    const ex = createTestExchange({
      upstream: (init, exchange) => {
        seen.push(init, exchange.upstreamTarget)
        return { status: 304, headers: { etag: '"a"' }, body: source([], []), cancel: () => {} }
      },
    })
    ex.upstreamTarget = '/rewritten'
    const res = await ex.fetchUpstream({ method: 'GET', headers: { 'if-none-match': '"a"' } })
    expect(res.status).toBe(304)
    expect(seen).toEqual([{ method: 'GET', headers: { 'if-none-match': '"a"' } }, '/rewritten'])
    expect(ex.upstreamCalls).toBe(1)
    // Fetching upstream does not answer the client.
    expect(ex.responded).toBe(false)
  })

  it('rejects without an upstream', async () => {
    const ex = createTestExchange()
    await expect(ex.fetchUpstream()).rejects.toThrow(/no upstream given/)
    expect(ex.upstreamCalls).toBe(1)
  })
})

describe('createTestExchange: deliver()', () => {
  it('edits the head, then runs taps in order, each chunk seen just before it is written', async () => {
    const log: string[] = []
    const ex = createTestExchange({ onRespond: loggingSink(log) })
    ex.onResponseHead((status, headers) => {
      log.push(`hook ${status}`)
      headers['x-edit'] = 'hooked'
    })
    ex.responseHeaders['x-set'] = 'set'
    ex.tap(loggingTap(log, 'one'))
    ex.tap(loggingTap(log, 'off', false))
    ex.tap(loggingTap(log, 'two'))
    let cancelled = false
    await ex.deliver({ status: 200, headers: { 'x-edit': 'upstream' }, body: source(['a', 'b'], log), cancel: () => void (cancelled = true) })
    expect(log).toEqual([
      'hook 200',
      'one head 200 hooked set',
      'off head 200 hooked set',
      'two head 200 hooked set',
      'write head 200 hooked set',
      'pull a',
      'one data a',
      'two data a',
      'write a',
      'pull b',
      'one data b',
      'two data b',
      'write b',
      'one end',
      'two end',
      'write end',
    ])
    expect(cancelled).toBe(false)
    expect(ex.sent).toMatchObject({ status: 200, headers: { 'x-edit': 'hooked', 'x-set': 'set' }, text: 'ab' })
    expect(ex.response?.status).toBe(200)
  })

  it('records the response without a sink', async () => {
    const ex = createTestExchange()
    const heads: HeaderRecord[] = []
    ex.tap({ ...loggingTap([], 't'), onHead: (_s, h) => heads.push(h) > 0 })
    await ex.deliver({ status: 404, headers: { 'content-type': 'text/plain' }, body: 'gone' })
    expect(ex.sent).toMatchObject({ status: 404, text: 'gone' })
    expect(heads).toEqual([{ 'content-type': 'text/plain' }])
  })

  it('aborts the taps and rejects when the upstream body fails', async () => {
    const log: string[] = []
    const ex = createTestExchange({ onRespond: loggingSink(log) })
    ex.tap(loggingTap(log, 'tap'))
    let cancelled = 0
    const failing = { status: 200, headers: {}, body: source(['a'], log, new Error('upstream reset')), cancel: () => void cancelled++ }
    await expect(ex.deliver(failing)).rejects.toThrow('upstream reset')
    expect(log).toEqual(['tap head 200 undefined undefined', 'write head 200 undefined undefined', 'pull a', 'tap data a', 'write a', 'tap abort upstream reset'])
    expect(cancelled).toBe(1)
    expect(ex.sent).toBeUndefined()
  })

  it('aborts the taps and cancels the upstream when the sink stops (a client cut)', async () => {
    const log: string[] = []
    const ex = createTestExchange({ onRespond: loggingSink(log, 1) })
    ex.tap(loggingTap(log, 'tap'))
    let cancelled = 0
    const upstream = { status: 200, headers: {}, body: source(['a', 'b', 'c'], log), cancel: () => void cancelled++ }
    await expect(ex.deliver(upstream)).rejects.toThrow('client closed')
    expect(log).toEqual(['tap head 200 undefined undefined', 'write head 200 undefined undefined', 'pull a', 'tap data a', 'write a', 'tap abort client closed'])
    expect(cancelled).toBe(1)
    expect(ex.sent).toBeUndefined()
  })

  it('treats a sink that returns without reading the body as a cut', async () => {
    const log: string[] = []
    const ex = createTestExchange({ onRespond: () => void log.push('head only') })
    ex.tap(loggingTap(log, 'tap'))
    let cancelled = 0
    await expect(ex.deliver({ status: 200, headers: {}, body: source(['a'], log), cancel: () => void cancelled++ })).rejects.toThrow(/cut short/)
    expect(log).toEqual(['tap head 200 undefined undefined', 'head only', 'tap abort response cut short'])
    expect(cancelled).toBe(1)
  })
})
