import { defineConfig } from 'tsup'

// The app bundles the workspace packages (their exports point at TypeScript sources) and keeps
// npm dependencies external, so `node dist/cli.js` runs on Node, Bun and Deno after `pnpm install`.
export default defineConfig({
  entry: { cli: 'src/cli.ts' },
  format: ['esm'],
  clean: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'node',
  removeNodeProtocol: false,
  noExternal: [/^@switchboard\//],
  banner: { js: '#!/usr/bin/env node' },
})
