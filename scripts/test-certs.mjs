// Test certificates for the TLS suites: a throwaway CA and leaf certificates signed by it, made
// with Debian's openssl in a fresh temp folder (real keys, nothing mocked).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Makes `ca.pem`/`ca.key` (subject `caName`) in a new temp folder; `leaf(name, cn, san)` then
 * writes `name.pem`/`name.key` signed by it (`san` as openssl spells it: `DNS:a.test,IP:127.0.0.1`).
 * Throws a clear error when openssl is missing.
 */
export function makeTestCa(prefix, caName) {
  let openssl = ''
  try {
    openssl = execFileSync('which', ['openssl'], { encoding: 'utf8' }).trim()
  } catch {
    // handled below
  }
  if (!openssl) throw new Error('the TLS tests need the openssl command (Debian: apt-get install openssl) to make their test certificates')
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const run = (...args) => void execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' })
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${caName}`)
  const leaf = (name, cn, san, usage = 'serverAuth,clientAuth') => {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${usage}\n`)
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`)
  }
  return { dir, run, leaf }
}
