import type { ConfigValidator } from '@switchboard/core'
import type { StoreConfig } from './types.ts'

export function parseStore(v: ConfigValidator, raw: unknown, at = 'store'): StoreConfig {
  if (raw === undefined) return { driver: 'memory' }
  const s = v.object(raw, at)
  v.keys(s, at, ['driver', 'path', 'url', 'failMode'])
  const driver = v.string(s.driver, `${at}.driver`)
  if (driver !== 'memory' && driver !== 'sqlite' && driver !== 'redis') v.fail(`${at}.driver`, 'memory, sqlite or redis', driver)
  const out: StoreConfig = { driver }
  if (driver === 'sqlite') out.path = v.optString(s.path, `${at}.path`) ?? './switchboard.db'
  if (driver === 'redis') {
    out.url = v.string(s.url, `${at}.url`)
    if (!/^rediss?:\/\//.test(out.url)) v.fail(`${at}.url`, 'a redis:// or rediss:// URL', out.url)
  }
  if (s.failMode !== undefined) {
    if (s.failMode !== 'open' && s.failMode !== 'closed') v.fail(`${at}.failMode`, 'open or closed', s.failMode)
    out.failMode = s.failMode
  }
  return out
}

