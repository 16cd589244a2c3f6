import { describe, expect, it } from 'vitest'
import { describeBalancer } from '../src/conformance.ts'
import { createEndpoint } from '../src/endpoint.ts'
import { firstAvailable } from '../src/index.ts'
import { req } from './helpers.ts'

describeBalancer({ name: 'first-available', create: () => firstAvailable() })

describe('firstAvailable', () => {
  const make = (id: string, priority: number) => createEndpoint({ url: `http://${id}.internal`, id, priority })

  it('picks the first endpoint of the lowest priority tier', () => {
    const list = [make('backup', 1), make('primary-a', 0), make('primary-b', 0), make('last', 2)]
    for (let i = 0; i < 10; i++) expect(firstAvailable().pick(list, req())?.id).toBe('primary-a')
  })

  it('falls to the backup tier when the primaries leave the (healthy) list', () => {
    const list = [make('backup-a', 1), make('backup-b', 1), make('cold', 2)]
    expect(firstAvailable().pick(list, req())?.id).toBe('backup-a')
    expect(firstAvailable().pick([list[2]], req())?.id).toBe('cold')
  })
})
