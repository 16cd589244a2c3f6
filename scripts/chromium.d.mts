import type { Browser } from 'playwright-core'

/** Debian's chromium binary. */
export const CHROMIUM: string
/** `--headless --no-sandbox --disable-gpu --disable-background-networking` */
export const CHROMIUM_ARGS: string[]
/** Whether it is installed (in CI importing this module throws when it is not). */
export const hasChromium: boolean
/** Launches headless Chromium with the suite's flags. */
export function launchChromium(): Promise<Browser>
/** One browser for the calling test file; the getter gives undefined before beforeAll or without Chromium. */
export function useChromium(): () => Browser | undefined
