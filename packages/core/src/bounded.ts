/**
 * Small Web-standard helpers for bounded waits and reads, shared by the packages that fetch on
 * their own (health probes, engine-stats scrapes, the gateway's model list).
 */

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as `signal` aborts, even when
 * the work behind `promise` ignores the signal (an injected fetch, a body read).
 * @example
 * const controller = new AbortController()
 * setTimeout(() => controller.abort(new Error('timeout')), 500)
 * const response = await untilAborted(fetch('http://127.0.0.1:8001/metrics', { signal: controller.signal }), controller.signal)
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      promise.catch(() => {})
      reject(signal.reason)
      return
    }
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/**
 * The body of `response` as UTF-8 text, refusing more than `maxBytes`: a declared Content-Length
 * above it is refused before reading, and a body that grows past it is cancelled there. Rejects with
 * `body over N bytes`.
 * @example
 * const text = await readTextWithin(new Response('hello'), 1024) // 'hello'
 */
export async function readTextWithin(response: Response, maxBytes: number): Promise<string> {
  const tooBig = (): Error => new Error(`body over ${maxBytes} bytes`)
  const body = response.body
  if (Number(response.headers.get('content-length') ?? Number.NaN) > maxBytes) {
    await body?.cancel().catch(() => {})
    throw tooBig()
  }
  if (body === null) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      throw tooBig()
    }
    chunks.push(value)
  }
  return new TextDecoder().decode(concatBytes(chunks, size))
}

/**
 * `parts` joined into one array (the part itself when there is one). `total`, when the caller
 * counted it already, saves a pass.
 * @example concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]) // Uint8Array [1, 2, 3]
 */
export function concatBytes(parts: readonly Uint8Array[], total?: number): Uint8Array {
  if (parts.length === 1) return parts[0]
  let size = total
  if (size === undefined) {
    size = 0
    for (const p of parts) size += p.byteLength
  }
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
