// Helpers shared by the health checker and the engine-stats scraper (not exported from the package).

/** `value ?? fallback`, refused unless a positive safe integer (the option's `name` in the message). */
export function positiveInteger(value: unknown, fallback: number, name: string): number {
  const result = value ?? fallback
  if (!Number.isSafeInteger(result) || (result as number) < 1) throw new RangeError(`${name} must be a positive integer`)
  return result as number
}

/** `value`, refused unless undefined or a function. */
export function fn<T>(value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new RangeError(`${name} must be a function`)
  return value
}

/** A short, runtime-neutral cause: `ECONNREFUSED` rather than Node's `fetch failed`. */
export function describeError(error: unknown, maxLength = 120): string {
  let current: unknown = error
  let messages = ''
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && code !== '') return normaliseCode(code)
    if (current instanceof Error) messages += `${current.message}\n`
    current = (current as { cause?: unknown }).cause
  }
  // Deno keeps the OS error only in the cause's message.
  if (/connection refused/i.test(messages)) return 'ECONNREFUSED'
  if (/connection reset/i.test(messages)) return 'ECONNRESET'
  const message = error instanceof Error ? error.message : String(error)
  return message.length > maxLength ? `${message.slice(0, maxLength - 3)}...` : message
}

function normaliseCode(code: string): string {
  // Bun names socket errors in PascalCase.
  if (code === 'ConnectionRefused') return 'ECONNREFUSED'
  if (code === 'ConnectionClosed' || code === 'ECONNRESET') return 'ECONNRESET'
  return code
}
