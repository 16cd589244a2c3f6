import { ConfigError, type ConfigObject, type ConfigValidator } from '@switchboard/core'
import type { GatewayRegistry } from '../registry.ts'
import type { StoreConfig } from './types.ts'

/**
 * `store:` (or `discovery.store:`): a registered driver's name and its options, checked by that
 * driver's own parser so the key path points at the bad option.
 */
export function parseStore(v: ConfigValidator, raw: unknown, registry: GatewayRegistry, at = 'store'): StoreConfig {
  if (raw === undefined) return { driver: 'memory' }
  const s = v.object(raw, at)
  const driver = v.string(s.driver, `${at}.driver`)
  const definition = registry.storeDriver(driver)
  if (!definition) v.fail(`${at}.driver`, registry.storeDriverNames().join(', '), driver)
  const options: ConfigObject = {}
  for (const key of Object.keys(s)) {
    if (key === 'driver') continue
    const value = s[key]
    options[key] = typeof value === 'string' ? v.expand(value, `${at}.${key}`) : value
  }
  try {
    definition.parse(options, at)
  } catch (err) {
    if (err instanceof ConfigError) throw ConfigError.inFile(err, v.file)
    v.fail(at, `valid ${driver} store options (${(err as Error).message})`, undefined)
  }
  return { driver, ...options }
}
