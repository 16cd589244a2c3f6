#!/usr/bin/env bash
# Runs the whole suite: vitest under Node 20 (the machine's node), Node 24, Bun and Deno, plus the
# native transport's share of runtime-tests again on Bun (bun-native), then the smoke test of the
# *built* packages on each, then the packaging checks (packed tarballs,
# README examples, publish dry runs). Ends with one line: "N passed, M failed".
# Expects `scripts/setup.sh` to have run (install + build).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="$ROOT/.test-results"
rm -rf "$OUT" && mkdir -p "$OUT"
BIN="$ROOT/node_modules/.bin"
VITEST="$ROOT/node_modules/vitest/vitest.mjs"
NODE24=(npx -y -p node@24 -- node)
ONLY="${SWITCHBOARD_RUNTIMES:-node20 node24 bun bun-native deno}"
# The suites the native transport (Bun.serve + Bun's fetch) serves, run again on it in bun-native:
# everything in runtime-tests but the WebSocket, workers and upstream-connection-reuse cases
# (native refuses WebSocket and workers configs; Bun's fetch keeps its own connection pool).
NATIVE_SUITES=(
  runtime-tests/test/hostile-clients.test.ts runtime-tests/test/framing-cli.test.ts
  runtime-tests/test/startup-cli.test.ts runtime-tests/test/bad-configs.test.ts
  runtime-tests/test/discovery-cli.test.ts runtime-tests/test/plugins-cli.test.ts
  runtime-tests/test/seed004-cli.test.ts runtime-tests/test/rate-limit-fleet.test.ts
  runtime-tests/test/docs-browser.test.ts runtime-tests/test/dashboard-browser.test.ts
)

# run_vitest NAME COMMAND... [::files TEST FILES...] (not `--`: the node@24 command contains one)
run_vitest() {
  local name=$1; shift
  local cmd=() files=()
  while [ $# -gt 0 ] && [ "$1" != "::files" ]; do cmd+=("$1"); shift; done
  [ $# -gt 0 ] && shift && files=("$@")
  echo "::group:: vitest on $name"
  "${cmd[@]}" run --reporter=default --reporter=json --outputFile.json="$OUT/vitest-$name.json" "${files[@]}" 2>&1 | tee "$OUT/vitest-$name.log" | tail -n 40
  echo "::endgroup::"
}

run_smoke() {
  local name=$1; shift
  echo "::group:: smoke test of built packages on $name"
  "$@" 2>&1 | tee "$OUT/smoke-$name.log" | tail -n 30
  echo "::endgroup::"
}

# Static checks: TypeScript over every package, publint over every packed package.
echo "::group:: typecheck and publint"
npx -y pnpm@10.34.8 run -s typecheck > "$OUT/typecheck.log" 2>&1; echo $? > "$OUT/typecheck.exit"
npx -y pnpm@10.34.8 run -s lint > "$OUT/lint.log" 2>&1; echo $? > "$OUT/lint.exit"
tail -n 3 "$OUT/typecheck.log" "$OUT/lint.log"
echo "::endgroup::"

# Pack the built packages once (publishConfig applied), shared by every runtime's smoke run.
node scripts/smoke-prepare.mjs "$OUT/smoke" || echo "smoke-prepare failed" > "$OUT/smoke-prepare.failed"

for rt in $ONLY; do
  case $rt in
    node20)
      run_vitest node20 node "$VITEST"
      run_smoke node20 node "$OUT/smoke/smoke.mjs" ;;
    node24)
      run_vitest node24 "${NODE24[@]}" "$VITEST"
      run_smoke node24 "${NODE24[@]}" "$OUT/smoke/smoke.mjs" ;;
    bun)
      run_vitest bun "$BIN/bun" --bun "$VITEST"
      run_smoke bun "$BIN/bun" "$OUT/smoke/smoke.mjs" ;;
    bun-native)
      run_vitest bun-native env SWITCHBOARD_TRANSPORT=native "$BIN/bun" --bun "$VITEST" ::files "${NATIVE_SUITES[@]}"
      run_smoke bun-native env SWITCHBOARD_TRANSPORT=native "$BIN/bun" "$OUT/smoke/smoke.mjs" ;;
    deno)
      run_vitest deno "$BIN/deno" run -A "$VITEST"
      run_smoke deno "$BIN/deno" run -A "$OUT/smoke/smoke.mjs" ;;
    *) echo "unknown runtime $rt" ;;
  esac
done

# Packaging (issue 14), once, after the per-runtime runs: pack:all into $OUT/packs; those tarballs
# installed with npm into an empty project, where the CLI serves on Node, Bun and Deno and the
# README examples marked runnable run (scripts/packed-install-test.mjs, one result per check); every
# README ```ts block type-checks (doc-test); deno and pnpm publish dry runs. Each prints PASS/FAIL.
# summarize-results.mjs counts "smoke ok:" / "smoke FAILED:" lines of the runtimes' smoke logs, so
# the results go into the first runtime's log (after a "printed nothing" failure when that runtime's
# own smoke run wrote no result, so it is not hidden).
read -r FIRST_RT _ <<< "$ONLY"
PKG_LOG="$OUT/smoke-${FIRST_RT:-node20}.log"
grep -qE '^smoke (ok|FAILED): ' "$PKG_LOG" 2>/dev/null ||
  echo "smoke FAILED: the smoke test of the built packages printed nothing (${FIRST_RT:-node20})" >> "$PKG_LOG"
packaging_step() { # name, command...: one result
  local name=$1; shift
  local log="$OUT/packaging-${name// /-}.log"
  echo "::group:: $name"
  if "$@" > "$log" 2>&1; then
    echo "PASS: $name"; echo "smoke ok: $name" >> "$PKG_LOG"
  else
    tail -n 30 "$log"; echo "FAIL: $name (see $log)"; echo "smoke FAILED: $name: see $log" >> "$PKG_LOG"
  fi
  echo "::endgroup::"
}
packaging_step "pack:all" node scripts/pack-all.mjs --out "$OUT/packs"
echo "::group:: packed tarballs installed into an empty project (Node, Bun, Deno)"
PACKED_LOG="$OUT/packaging-packed-install.log"
node scripts/packed-install-test.mjs --packs "$OUT/packs" > "$PACKED_LOG" 2>&1; packed_rc=$?
grep -E '^smoke (ok|FAILED): ' "$PACKED_LOG" >> "$PKG_LOG"
if [ $packed_rc -ne 0 ] && ! grep -q '^smoke FAILED: ' "$PACKED_LOG"; then
  echo "smoke FAILED: packed install test exited $packed_rc — see $PACKED_LOG" >> "$PKG_LOG"
fi
grep -E '^(smoke FAILED: |packed-install-test )' "$PACKED_LOG" | cut -c1-300
[ $packed_rc -eq 0 ] && echo "PASS: packed install" || echo "FAIL: packed install (see $PACKED_LOG)"
echo "::endgroup::"
packaging_step "doc-test" node scripts/doc-test.mjs
packaging_step "deno publish --dry-run" "$BIN/deno" publish --dry-run --allow-dirty
packaging_step "pnpm publish --dry-run -r" npx -y pnpm@10.34.8 publish --dry-run -r --no-git-checks

node scripts/summarize-results.mjs "$OUT" $ONLY
