import { describe, expect, it } from 'vitest'
import { ExpositionParseError, MetricsRegistry, parseExposition } from '../src/index.ts'

// Shapes from the engines' docs (vLLM "Production Metrics", SGLang "Production Metrics", TGI "Metrics").
const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 0.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 0.0123
# TYPE vllm:iteration_tokens_total histogram
vllm:iteration_tokens_total_bucket{le="1.0",model_name="unsloth/Llama-3.2-1B-Instruct"} 3.0
vllm:iteration_tokens_total_bucket{le="+Inf",model_name="unsloth/Llama-3.2-1B-Instruct"} 7.0
vllm:iteration_tokens_total_sum{model_name="unsloth/Llama-3.2-1B-Instruct"} 0.0
`
const SGLANG = `# HELP sglang:token_usage The token usage
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.28
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.007507552643049313
sglang:prompt_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 8.128902e+06
`
const TGI = '# TYPE tgi_queue_size gauge\r\ntgi_queue_size 4\r\ntgi_batch_current_size 2\r\n'

describe('parseExposition', () => {
  it('reads vLLM, SGLang and TGI expositions', () => {
    const v = parseExposition(VLLM)
    expect(v.samples.find((s) => s.name === 'vllm:num_requests_running')).toEqual({
      name: 'vllm:num_requests_running',
      labels: { engine: '0', model_name: 'unsloth/Llama-3.2-1B-Instruct' },
      value: 3,
    })
    expect(v.samples.find((s) => s.labels.le === '+Inf')?.value).toBe(7)
    expect(v.types.get('vllm:iteration_tokens_total')).toBe('histogram')
    expect(v.help.get('vllm:num_requests_waiting')).toBe('Number of requests waiting to be processed.')
    const s = parseExposition(SGLANG)
    expect(s.samples.map((x) => x.value)).toEqual([0.28, 0.007507552643049313, 8128902])
    expect(parseExposition(TGI).samples.map((x) => [x.name, x.value])).toEqual([['tgi_queue_size', 4], ['tgi_batch_current_size', 2]])
  })

  it("round-trips the metrics package's own writer", () => {
    const registry = new MetricsRegistry()
    const c = registry.counter('http_requests_total', 'Requests "served".\nTwo lines.', ['route'])
    c.labels('a\\b "quoted"\nnext').inc(3)
    registry.gauge('temperature', 'Now.').set(-Infinity)
    registry.histogram('latency_seconds', 'Time.', [], [0.5]).observe(0.2)
    const parsed = parseExposition(registry.exposition())
    expect(parsed.samples.find((x) => x.name === 'http_requests_total')).toEqual({ name: 'http_requests_total', labels: { route: 'a\\b "quoted"\nnext' }, value: 3 })
    expect(parsed.samples.find((x) => x.name === 'temperature')?.value).toBe(-Infinity)
    expect(parsed.samples.filter((x) => x.name.startsWith('latency_seconds')).map((x) => x.value)).toEqual([1, 1, 0.2, 1])
    expect(parsed.help.get('http_requests_total')).toBe('Requests "served".\nTwo lines.')
    expect(parsed.types.get('latency_seconds')).toBe('histogram')
  })

  it('reads NaN, timestamps, blanks and other comments', () => {
    const p = parseExposition('# a comment\n\nx NaN\ny{a="1",} 2 1700000000000\n  z\t5\n')
    expect(p.samples[0].value).toBeNaN()
    expect(p.samples[1]).toEqual({ name: 'y', labels: { a: '1' }, value: 2, timestampMs: 1700000000000 })
    expect(p.samples[2]).toEqual({ name: 'z', labels: {}, value: 5 })
  })

  it.each([
    ['x{a=b} 1', 1],
    ['x{a="b} 1', 1],
    ['x{a="\\q"} 1', 1],
    ['x one', 1],
    ['x 1 12.5', 1],
    ['ok 1\nx-y 1', 2],
    ['x{a="1",a="2"} 1', 1],
    ['x 1\n# TYPE x gauge', 2],
    ['# TYPE x gauge\n# TYPE x counter', 2],
    ['# TYPE x widget', 1],
    ['x', 1],
  ])('rejects %j at line %i', (text, line) => {
    let caught: unknown
    try {
      parseExposition(text)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(ExpositionParseError)
    expect((caught as ExpositionParseError).line).toBe(line)
  })
})
