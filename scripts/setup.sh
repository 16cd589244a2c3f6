#!/usr/bin/env bash
# Installs the workspace with the pinned pnpm (through npx: only Node and npm are needed) and builds
# every package. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM=(npx -y pnpm@10.34.8)
"${PNPM[@]}" install --frozen-lockfile
"${PNPM[@]}" run -s build
