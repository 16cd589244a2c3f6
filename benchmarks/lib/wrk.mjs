// Drives wrk and parses its report.
import { runCommand } from './proc.mjs'

/**
 * Runs `wrk --latency` against `url` for `durationS` seconds with `connections`
 * connections on one thread, pinned to `cpu`, with extra request `headers`. Returns the parsed report.
 */
export const runWrk = async ({ url, durationS, connections, script, cpu, headers }) => {
  const args = ['-t', '1', '-c', String(connections), '-d', `${durationS}s`, '--timeout', '5s', '--latency']
  for (const [name, value] of Object.entries(headers ?? {})) args.push('-H', `${name}: ${value}`)
  if (script) args.push('-s', script)
  args.push(url)
  const { code, stdout, stderr } = await runCommand('wrk', args, { cpu })
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${stderr || stdout}`)
  return parseWrk(stdout)
}

/** Parses wrk's text output (requests, rps, p50/p99 in ms, errors). */
export const parseWrk = (text) => {
  const num = (re) => { const m = re.exec(text); return m ? Number(m[1]) : 0 }
  const latency = (pct) => {
    const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text)
    if (!m) return Number.NaN
    return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3 }[m[2]]
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: latency(50),
    p99Ms: latency(99),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors,
    timeouts: socket ? Number(socket[4]) : 0,
  }
}
