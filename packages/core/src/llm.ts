/**
 * What the gateway's LLM features share: the token usage a metered route records on the exchange,
 * read by budgets and logs, and the request-side estimates budgets reserve at admission.
 */

/**
 * `ex.state` key holding the {@link TokenUsage} of a metered route's response (`routes[].usage`):
 * from the response head on a live view of the figures so far (what a layer reading it when the
 * client connection closes sees), replaced by the final figures before the route's terminal step
 * resolves (the response ended completely, cut, or abandoned by the client). Absent when no
 * upstream response was read (refused before, upstream unreachable).
 */
export const TOKEN_USAGE_STATE = 'switchboard.tokenUsage'

/**
 * Tokens one request used, as the gateway's token accounting recorded it.
 * @example
 * const usage: TokenUsage = { model: 'llama-3-8b', promptTokens: 12, completionTokens: 40, source: 'reported' }
 */
export interface TokenUsage {
  /** The model that answered (the response's `model`, else the request's), when known. */
  readonly model: string | undefined
  /** Prompt (input) tokens. */
  readonly promptTokens: number
  /** Completion (output) tokens. */
  readonly completionTokens: number
  /**
   * `reported`: both figures come from the provider's usage block. `counted`: the response ended
   * without one (the client went away, the stream was cut); completion tokens are the
   * token-bearing chunks the gateway relayed and prompt tokens are the provider's figure when the
   * stream carried one (Anthropic's `message_start`), else {@link estimatePromptTokens}.
   */
  readonly source: 'reported' | 'counted'
}

/** Tokens counted per message on top of its text (role, separators), as chat templates add them. */
const PER_MESSAGE_TOKENS = 4
/** Tokens a chat request costs on top of its messages (the assistant's reply prefix). */
const PER_REQUEST_TOKENS = 3

/**
 * An estimate of a chat or completion request's prompt tokens, without the model's tokenizer:
 * one token per 4 UTF-8 bytes of text (rounded up), plus a few per message. English text under
 * BPE tokenizers is 3.5–4.5 bytes per token, so this is close, not a bound; budgets reconcile
 * with the provider's figure when the response ends. Understands OpenAI chat (`messages`, string
 * or content-part `content`), OpenAI completions (`prompt`, string or list) and Anthropic
 * messages (`system` and `messages`). 0 for anything else.
 * @example
 * estimatePromptTokens({ messages: [{ role: 'user', content: 'Hello there, model!' }] }) // 12
 */
export function estimatePromptTokens(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0
  const b = body as Record<string, unknown>
  let bytes = 0
  let messages = 0
  if (Array.isArray(b.messages)) {
    for (const m of b.messages) {
      messages++
      if (typeof m === 'object' && m !== null) bytes += textBytes((m as Record<string, unknown>).content)
    }
  }
  if (b.system !== undefined) {
    messages++
    bytes += textBytes(b.system)
  }
  if (b.prompt !== undefined) bytes += textBytes(b.prompt)
  if (messages === 0 && b.prompt === undefined) return 0
  return Math.ceil(bytes / 4) + messages * PER_MESSAGE_TOKENS + (messages > 0 ? PER_REQUEST_TOKENS : 0)
}

/**
 * The completion-token cap a request asks for: `max_completion_tokens`, `max_tokens` (OpenAI,
 * Anthropic) or `max_output_tokens`, when it is a positive integer; `undefined` otherwise.
 * @example requestedMaxTokens({ max_tokens: 256 }) // 256
 */
export function requestedMaxTokens(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const b = body as Record<string, unknown>
  for (const key of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const v = b[key]
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v
  }
  return undefined
}

/** The `model` a request names, when it is a non-empty string. */
export function requestedModel(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const m = (body as Record<string, unknown>).model
  return typeof m === 'string' && m !== '' ? m : undefined
}

const encoder = new TextEncoder()

/** UTF-8 bytes of a prompt value: a string, a list of strings or content parts (`{ text }`). */
function textBytes(value: unknown): number {
  if (typeof value === 'string') return encoder.encode(value).byteLength
  if (Array.isArray(value)) {
    let n = 0
    for (const part of value) {
      if (typeof part === 'string') n += encoder.encode(part).byteLength
      else if (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string') n += encoder.encode((part as { text: string }).text).byteLength
    }
    return n
  }
  return 0
}
