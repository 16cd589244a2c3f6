const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
}
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/i
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)$/i

/**
 * Parses `250ms`, `2s`, `5m`, `1h` or a number of milliseconds. Returns `undefined` for anything
 * else so callers can name the offending key in their own error.
 * @example parseDuration('2s') // 2000
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const m = DURATION_RE.exec(trimmed)
  if (!m) return undefined
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2].toLowerCase()])
}

/**
 * Parses `16kb`, `10mb`, `1gb` (binary multiples) or a number of bytes. Returns `undefined` for
 * anything else.
 * @example parseSize('16kb') // 16384
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const m = SIZE_RE.exec(trimmed)
  if (!m) return undefined
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()])
}
