// The real browser of the test suite: Debian's chromium driven by playwright-core, with the flags
// every browser test uses. `useChromium()` launches one per test file (beforeAll) and closes it.
import { existsSync } from 'node:fs'
import { afterAll, beforeAll } from 'vitest'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
export const hasChromium = existsSync(CHROMIUM)
if (!hasChromium && process.env.CI) throw new Error(`${CHROMIUM} is required in CI for the browser tests (apt-get install -y chromium)`)

/** Launches headless Chromium with the suite's flags. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core')
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
}

/** One browser for the calling test file: launched before its tests (when installed), closed after. */
export function useChromium() {
  let browser
  beforeAll(async () => {
    if (hasChromium) browser = await launchChromium()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
  })
  return () => browser
}
