// Preloaded into a Node proxy by node-alloc.sh (`node --import ./node-alloc.mjs …`): samples every
// allocation, including what the young and old generation collect later, from SIGUSR1 to SIGUSR2,
// and writes the V8 sampling heap profile to $ALLOC_OUT. Allocation per request does not move with
// the CPU steal that makes this VM's timings noisy, so it shows a hot-path change a CPU figure cannot.
import { Session } from 'node:inspector'
import { writeFileSync } from 'node:fs'

const session = new Session()
session.connect()
const post = (method, params = {}) =>
  new Promise((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))))

// SIGUSR1 would open the inspector port: replace Node's own handler.
process.on('SIGUSR1', () => {
  post('HeapProfiler.enable')
    .then(() => post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }))
    .then(() => console.error('node-alloc: sampling'), (err) => console.error(`node-alloc: ${err}`))
})
process.on('SIGUSR2', () => {
  post('HeapProfiler.stopSampling')
    .then(({ profile }) => {
      writeFileSync(process.env.ALLOC_OUT ?? 'alloc.heapprofile', JSON.stringify(profile))
      console.error('node-alloc: written')
    }, (err) => console.error(`node-alloc: ${err}`))
})
