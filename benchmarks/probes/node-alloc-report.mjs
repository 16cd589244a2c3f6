// Prints bytes allocated per request from a node-alloc.mjs profile: the total, then the functions
// that allocate most (self), optionally the calling chains too.
// Usage: node node-alloc-report.mjs PROFILE REQUESTS [TOP]
import { readFileSync } from 'node:fs'

const [file, requestsArg, topArg] = process.argv.slice(2)
if (!file || !requestsArg) {
  console.error('usage: node node-alloc-report.mjs PROFILE REQUESTS [TOP]')
  process.exit(2)
}
const requests = Number(requestsArg)
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const where = (f) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${f.lineNumber + 1}`
const self = new Map()
let total = 0
const walk = (node) => {
  total += node.selfSize
  const key = where(node.callFrame)
  self.set(key, (self.get(key) ?? 0) + node.selfSize)
  for (const child of node.children) walk(child)
}
walk(profile.head)
console.log(`allocated ${(total / 2 ** 20).toFixed(1)} MiB over ${requests} requests: ${Math.round(total / requests)} B/request`)
for (const [key, bytes] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${String(Math.round(bytes / requests)).padStart(7)} B/req  ${key}`)
}
