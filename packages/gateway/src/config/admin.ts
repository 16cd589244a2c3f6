import type { ConfigValidator } from '@switchboard/core'
import type { AdminConfig } from './types.ts'

export function parseAdmin(v: ConfigValidator, raw: unknown, healthPath: string): AdminConfig | undefined {
  if (raw === undefined || raw === false) return undefined
  const a = raw === true ? {} : v.object(raw, 'admin')
  v.keys(a, 'admin', ['path', 'token'])
  const path = (v.optString(a.path, 'admin.path') ?? '/admin').replace(/\/+$/, '')
  if (!path.startsWith('/') || path.length < 2) v.fail('admin.path', 'a path prefix such as /admin', a.path)
  if (healthPath === path || healthPath.startsWith(`${path}/`)) v.fail('admin.path', 'a prefix that does not contain server.healthPath', a.path)
  const token = v.optString(a.token, 'admin.token')
  if (token !== undefined && token.length < 16) v.fail('admin.token', 'a token of at least 16 characters', '(hidden)')
  return { path, token }
}
