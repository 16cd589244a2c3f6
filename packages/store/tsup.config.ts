import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts', 'src/sqlite.ts', 'src/redis.ts', 'src/conformance.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  removeNodeProtocol: false,
  // The conformance suite runs inside the caller's vitest; drivers' heavy deps stay external too.
  external: ['vitest', 'ioredis', 'libsql'],
})
