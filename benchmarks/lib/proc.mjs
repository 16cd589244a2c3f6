// Child processes the benchmark starts, and what /proc says about them.
import { spawn, execFileSync } from 'node:child_process'
import { openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'

/** Every process group we started; killed on exit, SIGINT, SIGTERM and errors. */
const groups = new Set()

/** Clock ticks per second for /proc/<pid>/stat utime/stime. */
export const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

/**
 * Starts a long-running process in its own process group, pinned to `cpu` with taskset.
 * stdout/stderr go to `logFile`.
 */
export const startProcess = ({ cmd, args, cpu, env, cwd, logFile }) => {
  const fd = openSync(logFile, 'a')
  const child = spawn('taskset', ['-c', String(cpu), cmd, ...args], {
    cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  groups.add(child.pid)
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => { groups.delete(child.pid); resolve({ code, signal }) }))
  child.once('error', () => groups.delete(child.pid))
  return child
}

/** Runs a short command (wrk) in its own group so an interrupt can kill it too. */
export const runCommand = (cmd, args, { cpu } = {}) => new Promise((resolve, reject) => {
  const [file, argv] = cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]]
  const child = spawn(file, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  groups.add(child.pid)
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  child.once('error', (e) => { groups.delete(child.pid); reject(e) })
  child.once('close', (code) => { groups.delete(child.pid); resolve({ code, stdout: out, stderr: err }) })
})

/** Stops one started process group: SIGTERM, then SIGKILL after `graceMs`. */
export const stopProcess = async (child, graceMs = 1500) => {
  if (!groups.has(child.pid)) return
  killGroup(child.pid, 'SIGTERM')
  const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs)
  await child.exited
  clearTimeout(timer)
  killGroup(child.pid, 'SIGKILL') // stragglers left in the group (nginx workers, bun under sh)
}

/** Synchronously kills everything still running; safe to call from process.on('exit'). */
export const killAll = () => {
  for (const pgid of groups) killGroup(pgid, 'SIGKILL')
  groups.clear()
}

/** `pid` and all its descendants, from the ppid field of /proc/<pid>/stat. */
export const processTree = (pid) => {
  const children = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(entry)
    if (!stat) continue
    const list = children.get(stat.ppid) ?? []
    list.push(Number(entry))
    children.set(stat.ppid, list)
  }
  const tree = []
  const queue = [pid]
  while (queue.length > 0) {
    const p = queue.shift()
    tree.push(p)
    queue.push(...(children.get(p) ?? []))
  }
  return tree
}

/** utime+stime in seconds summed over the tree (threads included: the process-wide figure). */
export const treeCpuSeconds = (pids) => {
  let ticks = 0
  for (const p of pids) {
    const stat = readStat(p)
    if (stat) ticks += stat.utime + stat.stime
  }
  return ticks / CLK_TCK
}

/** Resets the peak RSS (VmHWM) of each process: `echo 5 > /proc/<pid>/clear_refs`. */
export const resetPeakRss = (pids) => {
  for (const p of pids) { try { writeFileSync(`/proc/${p}/clear_refs`, '5') } catch { /* gone or not permitted */ } }
}

/** Sum of VmHWM over the tree, in bytes. */
export const treePeakRssBytes = (pids) => {
  let kb = 0
  for (const p of pids) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) kb += Number(m[1])
    } catch { /* exited */ }
  }
  return kb * 1024
}

const killGroup = (pgid, signal) => { try { process.kill(-pgid, signal) } catch { /* already gone */ } }

const readStat = (pid) => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm (field 2) may contain spaces and parens: split after the last ')'
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) }
  } catch {
    return undefined
  }
}

/** Busy seconds of one CPU since boot (user+nice+system+irq+softirq+steal from /proc/stat). */
export const cpuBusySeconds = (cpu) => {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  if (!line) return Number.NaN
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  return (user + nice + system + irq + softirq + (steal || 0)) / CLK_TCK
}
