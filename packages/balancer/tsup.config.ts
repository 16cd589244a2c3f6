import { defineConfig } from 'tsup'

export default defineConfig({
  // `conformance` is the test-only subpath: it imports vitest, which stays external.
  entry: ['src/index.ts', 'src/conformance.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  removeNodeProtocol: false,
  external: ['vitest'],
})
