import { concatBytes, type TokenUsage } from '@switchboard/core'

/** A streamed event longer than this is passed through unread (and the response counted). */
export const MAX_EVENT_BYTES = 1024 * 1024
/** A non-streamed answer longer than this is passed through unread (and the response counted). */
export const MAX_JSON_BYTES = 8 * 1024 * 1024

/** How one response is metered: what the upstream speaks and what the gateway itself added to the request. */
export interface UsageMeterOptions {
  /** The API the upstream speaks. */
  readonly format: 'openai' | 'anthropic'
  /** The gateway turned `stream_options.include_usage` on: the final usage chunk and `"usage":null` members are removed. @default false */
  readonly stripFinal?: boolean
  /** The gateway turned `continuous_usage_stats` on: per-chunk `usage` objects are removed. @default false */
  readonly stripChunkUsage?: boolean
  /** The request's `model`, used when the response names none. */
  readonly requestModel?: string
  /** Prompt tokens to record when the response carries no figure of its own. @default 0 */
  readonly promptEstimate?: number
  /** @default MAX_EVENT_BYTES */
  readonly maxEventBytes?: number
  /** @default MAX_JSON_BYTES */
  readonly maxJsonBytes?: number
}

/**
 * Reads the token usage of one LLM response as its bytes go by (OpenAI-compatible or Anthropic,
 * server-sent events or one JSON answer) and removes, byte-exactly, what the gateway asked the
 * upstream to add (the final `choices: []` usage chunk, `"usage":null` members, per-chunk usage).
 * Nothing is re-serialised: every byte the client gets is a byte the upstream sent. Every buffer is
 * bounded; past a bound the meter stops reading and passes bytes through, and the usage is `counted`.
 * @example
 * const meter = new UsageMeter({ format: 'openai' })
 * meter.begin('application/json')
 * meter.push(new TextEncoder().encode('{"model":"m","usage":{"prompt_tokens":3,"completion_tokens":5}}'))
 * meter.usage() // { model: 'm', promptTokens: 3, completionTokens: 5, source: 'reported' }
 */
export class UsageMeter {
  readonly #o: UsageMeterOptions
  readonly #maxEvent: number
  readonly #maxJson: number
  #sse = false
  /** Bytes of the event (SSE) or answer (JSON) not parsed yet. */
  #pending: Uint8Array = new Uint8Array(0)
  /** Past a bound: bytes pass through unread from here on. */
  #blind = false
  #model: string | undefined
  /** Token-bearing chunks (OpenAI) or content deltas (Anthropic) seen. */
  #chunks = 0
  /** Prompt tokens the stream itself stated (Anthropic `message_start`, OpenAI per-chunk usage). */
  #streamPrompt: number | undefined
  /** Anthropic's cumulative `output_tokens` (`message_delta`). */
  #streamOutput: number | undefined
  #reported: { prompt: number; completion: number } | undefined

  constructor(options: UsageMeterOptions) {
    this.#o = options
    this.#maxEvent = options.maxEventBytes ?? MAX_EVENT_BYTES
    this.#maxJson = options.maxJsonBytes ?? MAX_JSON_BYTES
  }

  /** True when the meter may remove bytes (the caller then drops `content-length`). */
  get rewrites(): boolean {
    return this.#sse && (this.#o.stripFinal === true || this.#o.stripChunkUsage === true)
  }

  /** Starts the response: `text/event-stream` is read as events, anything else as one JSON answer. */
  begin(contentType: string | undefined): void {
    this.#sse = typeof contentType === 'string' && contentType.toLowerCase().includes('text/event-stream')
  }

  /** Feeds upstream bytes; returns the bytes for the client (the same ones, minus what is removed). */
  push(chunk: Uint8Array): Uint8Array {
    if (this.#blind || chunk.byteLength === 0) return chunk
    if (!this.#sse) {
      if (this.#pending.byteLength + chunk.byteLength > this.#maxJson) this.#goBlind()
      else this.#pending = concatBytes([this.#pending, chunk])
      return chunk
    }
    const rewrite = this.rewrites
    const from = Math.max(0, this.#pending.byteLength - 2)
    const buf = concatBytes([this.#pending, chunk])
    const out: Uint8Array[] = []
    let start = 0
    for (let i = from; i < buf.byteLength; i++) {
      if (buf[i] !== LF) continue
      // An event ends at an empty line: LF LF or LF CR LF.
      const next = buf[i + 1] === LF ? i + 2 : buf[i + 1] === CR && buf[i + 2] === LF ? i + 3 : -1
      if (next === -1) continue
      const event = buf.subarray(start, next)
      const kept = this.#event(event, rewrite)
      if (rewrite && kept) out.push(kept)
      start = next
      i = next - 1
    }
    this.#pending = buf.slice(start)
    if (this.#pending.byteLength > this.#maxEvent) {
      // An event without end in sight: let it (and everything after it) through unread.
      if (rewrite) out.push(this.#pending)
      this.#goBlind()
    }
    return rewrite ? concatBytes(out) : chunk
  }

  /** Ends the response; returns held-back bytes (a last event without its blank line). */
  finish(): Uint8Array {
    const rest = this.#pending
    this.#pending = new Uint8Array(0)
    if (this.#blind) return new Uint8Array(0)
    if (!this.#sse) {
      this.#json(rest)
      return new Uint8Array(0)
    }
    return this.rewrites ? rest : new Uint8Array(0)
  }

  /** The usage as far as known: `reported` when the provider's figures arrived, `counted` otherwise. */
  usage(): TokenUsage {
    const model = this.#model ?? this.#o.requestModel
    const r = this.#reported
    if (r) return { model, promptTokens: r.prompt, completionTokens: r.completion, source: 'reported' }
    const completion = this.#o.format === 'anthropic' ? (this.#streamOutput ?? this.#chunks) : this.#chunks
    return { model, promptTokens: this.#streamPrompt ?? this.#o.promptEstimate ?? 0, completionTokens: completion, source: 'counted' }
  }

  #goBlind(): void {
    this.#blind = true
    this.#pending = new Uint8Array(0)
  }

  /** Reads one complete event; returns the bytes to send on (undefined drops it) when rewriting. */
  #event(event: Uint8Array, rewrite: boolean): Uint8Array | undefined {
    const text = decoder.decode(event)
    let data: string | undefined
    let lines = 0
    for (const line of text.split(/\r?\n/)) {
      if (!line.startsWith('data:')) continue
      lines++
      data = line.slice(line[5] === ' ' ? 6 : 5)
    }
    if (data === undefined || lines !== 1 || data === '[DONE]') return event
    let value: unknown
    try {
      value = JSON.parse(data)
    } catch {
      return event
    }
    if (!isObject(value)) return event
    if (this.#o.format === 'anthropic') {
      this.#anthropicEvent(value)
      return event
    }
    const usage = value.usage
    const choices = value.choices
    if (this.#model === undefined && typeof value.model === 'string') this.#model = value.model
    if (Array.isArray(choices)) for (const c of choices) if (bearsTokens(c)) {
      this.#chunks++
      break
    }
    const final = Array.isArray(choices) && (choices.length === 0 || choices.some((c) => isObject(c) && c.finish_reason != null))
    if (isObject(usage)) {
      const prompt = count(usage.prompt_tokens)
      const completion = count(usage.completion_tokens)
      if (prompt !== undefined) this.#streamPrompt = prompt
      if (final && prompt !== undefined && completion !== undefined) this.#reported = { prompt, completion }
    }
    if (!rewrite) return event
    const o = this.#o
    if (o.stripFinal && isObject(usage) && Array.isArray(choices) && choices.length === 0) return undefined
    const ours = o.stripFinal ? 'usage' in value : o.stripChunkUsage === true && isObject(usage) && Array.isArray(choices) && choices.length > 0
    if (ours) return withoutMember(event, 'usage') ?? event
    return event
  }

  #anthropicEvent(value: Record<string, unknown>): void {
    const type = value.type
    if (type === 'message_start' && isObject(value.message)) {
      const message = value.message
      if (typeof message.model === 'string') this.#model = message.model
      if (isObject(message.usage)) this.#streamPrompt = count(message.usage.input_tokens) ?? this.#streamPrompt
    } else if (type === 'content_block_delta') this.#chunks++
    else if (type === 'message_delta' && isObject(value.usage)) {
      const output = count(value.usage.output_tokens)
      const input = count(value.usage.input_tokens)
      if (input !== undefined) this.#streamPrompt = input
      if (output !== undefined) {
        this.#streamOutput = output
        if (this.#streamPrompt !== undefined) this.#reported = { prompt: this.#streamPrompt, completion: output }
      }
    }
  }

  /** Reads a non-streamed answer's usage block (OpenAI `prompt_tokens`, Anthropic `input_tokens`). */
  #json(bytes: Uint8Array): void {
    let value: unknown
    try {
      value = JSON.parse(decoder.decode(bytes))
    } catch {
      return
    }
    if (!isObject(value)) return
    if (typeof value.model === 'string') this.#model = value.model
    const usage = value.usage
    if (!isObject(usage)) return
    const prompt = count(this.#o.format === 'anthropic' ? usage.input_tokens : usage.prompt_tokens)
    const completion = count(this.#o.format === 'anthropic' ? usage.output_tokens : usage.completion_tokens)
    if (prompt !== undefined && completion !== undefined) this.#reported = { prompt, completion }
  }
}

/**
 * The bytes of an SSE event whose single `data:` line is a JSON object, without that object's
 * top-level member `key` and one comma next to it; undefined when the event has no such member
 * (or is not shaped so). The rest of the bytes are kept exactly.
 * @example
 * const event = new TextEncoder().encode('data: {"a":1,"usage":null}\n\n')
 * new TextDecoder().decode(withoutMember(event, 'usage')) // 'data: {"a":1}\n\n'
 */
export function withoutMember(event: Uint8Array, key: string): Uint8Array | undefined {
  const open = event.indexOf(BRACE_OPEN)
  if (open === -1) return undefined
  const want = encoder.encode(key)
  let i = skipWs(event, open + 1)
  let prevEnd = -1
  while (i < event.byteLength && event[i] === QUOTE) {
    const keyStart = i
    const keyEnd = skipString(event, i)
    if (keyEnd === -1) return undefined
    let j = skipWs(event, keyEnd)
    if (event[j] !== COLON) return undefined
    j = skipWs(event, j + 1)
    const valueEnd = skipValue(event, j)
    if (valueEnd === -1) return undefined
    const after = skipWs(event, valueEnd)
    const matches = keyEnd - keyStart - 2 === want.byteLength && want.every((b, n) => event[keyStart + 1 + n] === b)
    if (matches) {
      // Not the first member: drop from the end of the previous value (the comma with it);
      // the first: drop up to the next member's key; the only one: drop the member.
      if (prevEnd !== -1) return concatBytes([event.subarray(0, prevEnd), event.subarray(valueEnd)])
      if (event[after] === COMMA) return concatBytes([event.subarray(0, keyStart), event.subarray(skipWs(event, after + 1))])
      return concatBytes([event.subarray(0, keyStart), event.subarray(valueEnd)])
    }
    if (event[after] !== COMMA) return undefined
    prevEnd = valueEnd
    i = skipWs(event, after + 1)
  }
  return undefined
}

const LF = 0x0a
const CR = 0x0d
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const BRACE_OPEN = 0x7b
const decoder = new TextDecoder()
const encoder = new TextEncoder()

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined
}

/** An OpenAI choice that carries generated tokens: delta content, tool calls or reasoning, or completion text. */
function bearsTokens(choice: unknown): boolean {
  if (!isObject(choice)) return false
  const nonEmpty = (v: unknown): boolean => (typeof v === 'string' && v !== '') || (Array.isArray(v) && v.length > 0)
  if (nonEmpty(choice.text)) return true
  const delta = choice.delta
  return isObject(delta) && (nonEmpty(delta.content) || nonEmpty(delta.tool_calls) || nonEmpty(delta.reasoning_content) || nonEmpty(delta.reasoning))
}

function skipWs(b: Uint8Array, i: number): number {
  while (i < b.byteLength && (b[i] === 0x20 || b[i] === 0x09 || b[i] === LF || b[i] === CR)) i++
  return i
}

/** Index after the string starting at `i` (a quote), or -1 when it does not end. */
function skipString(b: Uint8Array, i: number): number {
  for (let j = i + 1; j < b.byteLength; j++) {
    if (b[j] === BACKSLASH) j++
    else if (b[j] === QUOTE) return j + 1
  }
  return -1
}

/** Index after the JSON value starting at `i` (depth and strings tracked), or -1 when it does not end. */
function skipValue(b: Uint8Array, i: number): number {
  let depth = 0
  for (let j = i; j < b.byteLength; j++) {
    const c = b[j]
    if (c === QUOTE) {
      j = skipString(b, j) - 1
      if (j < 0) return -1
      if (depth === 0) return j + 1
    } else if (c === BRACE_OPEN || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) return j
      depth--
      if (depth === 0) return j + 1
    } else if (depth === 0 && (c === COMMA || c === 0x20 || c === 0x09 || c === LF || c === CR)) return j
  }
  return -1
}
