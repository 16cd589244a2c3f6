import { defineConfig } from 'vitest/config'

// One suite for the whole monorepo; scripts/test-all.sh runs it under Node 20, Node 24, Bun and Deno.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'runtime-tests/test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    globalSetup: [],
  },
})
