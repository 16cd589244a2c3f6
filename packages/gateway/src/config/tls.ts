import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import type { ConfigValidator } from '@switchboard/core'
import type { ListenerTlsConfig, TlsCertificateConfig, UpstreamTlsConfig } from './types.ts'

const PEM = /-----BEGIN [A-Z0-9 ]+-----[\s\S]+?-----END [A-Z0-9 ]+-----/
const SERVER_NAME = /^(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/** Reads a PEM file named at `at` (relative to the config file's folder); refuses a missing or non-PEM file. */
export function readPemFile(v: ConfigValidator, raw: unknown, at: string, baseDir: string, kind: 'certificate' | 'private key' | 'CA bundle'): { file: string; text: string } {
  const file = v.string(raw, at)
  let text: string
  try {
    text = readFileSync(isAbsolute(file) ? file : resolve(baseDir, file), 'utf8')
  } catch (err) {
    return v.fail(at, `a readable ${kind} file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, file)
  }
  if (!PEM.test(text)) v.fail(at, `a PEM ${kind} file (-----BEGIN …-----)`, file)
  if (kind === 'private key' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) v.fail(at, 'a PEM private key file (-----BEGIN PRIVATE KEY-----)', file)
  if (kind !== 'private key' && !/-----BEGIN CERTIFICATE-----/.test(text)) v.fail(at, `a PEM ${kind} file (-----BEGIN CERTIFICATE-----)`, file)
  return { file, text }
}

/**
 * `server.tls`: `{ cert, key, ca?, minVersion? }`, or a list of `{ cert, key, serverName? }` for SNI
 * (at most one entry without `serverName`: the default; `ca` and `minVersion` on the first entry
 * apply to all). Files are read now, so a reload picks up renewed certificates.
 */
export function parseListenerTls(v: ConfigValidator, raw: unknown, baseDir: string): ListenerTlsConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const at = 'server.tls'
  const list = Array.isArray(raw) ? raw : [raw]
  if (list.length === 0) v.fail(at, 'a certificate ({ cert, key }) or a list of them', raw)
  let minVersion: ListenerTlsConfig['minVersion'] = 'TLSv1.2'
  let ca: { file: string; text: string } | undefined
  const names = new Set<string>()
  let defaults = 0
  const certificates = list.map((entry, i): TlsCertificateConfig => {
    const eat = Array.isArray(raw) ? `${at}[${i}]` : at
    const e = v.object(entry, eat)
    v.keys(e, eat, i === 0 ? ['cert', 'key', 'serverName', 'ca', 'minVersion'] : ['cert', 'key', 'serverName'])
    if (i === 0) {
      if (e.minVersion !== undefined) {
        const mv = v.string(e.minVersion, `${eat}.minVersion`)
        if (mv !== 'TLSv1.2' && mv !== 'TLSv1.3') v.fail(`${eat}.minVersion`, 'TLSv1.2 or TLSv1.3', mv)
        minVersion = mv
      }
      if (e.ca !== undefined) ca = readPemFile(v, e.ca, `${eat}.ca`, baseDir, 'CA bundle')
    }
    let serverName: string | undefined
    if (e.serverName !== undefined) {
      serverName = v.string(e.serverName, `${eat}.serverName`).toLowerCase()
      if (!SERVER_NAME.test(serverName)) v.fail(`${eat}.serverName`, 'a host name (api.example.com or *.example.com)', serverName)
      if (names.has(serverName)) v.fail(`${eat}.serverName`, 'a name no other certificate uses', serverName)
      names.add(serverName)
    } else if (++defaults > 1) v.fail(`${eat}.serverName`, 'a serverName (only one certificate may be the default)', undefined)
    const cert = readPemFile(v, e.cert, `${eat}.cert`, baseDir, 'certificate')
    const key = readPemFile(v, e.key, `${eat}.key`, baseDir, 'private key')
    return { serverName, certFile: cert.file, keyFile: key.file, cert: cert.text, key: key.text }
  })
  return { certificates, minVersion, ca: ca?.text, caFile: ca?.file }
}

/** `upstreams.NAME.tls`: `{ ca?, servername?, rejectUnauthorized? }`. */
export function parseUpstreamTls(v: ConfigValidator, raw: unknown, at: string, baseDir: string): UpstreamTlsConfig | undefined {
  if (raw === undefined) return undefined
  const t = v.object(raw, at)
  v.keys(t, at, ['ca', 'servername', 'rejectUnauthorized'])
  const ca = t.ca === undefined ? undefined : readPemFile(v, t.ca, `${at}.ca`, baseDir, 'CA bundle')
  const servername = v.optString(t.servername, `${at}.servername`)
  if (servername !== undefined && !SERVER_NAME.test(servername)) v.fail(`${at}.servername`, 'a host name', servername)
  if (t.rejectUnauthorized !== undefined && typeof t.rejectUnauthorized !== 'boolean') v.fail(`${at}.rejectUnauthorized`, 'true or false', t.rejectUnauthorized)
  const rejectUnauthorized = t.rejectUnauthorized !== false
  return { ca: ca?.text, caFile: ca?.file, servername, rejectUnauthorized }
}
