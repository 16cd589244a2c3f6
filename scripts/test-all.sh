#!/usr/bin/env bash
# Runs the whole suite: vitest under Node 20 (the machine's node), Node 24, Bun and Deno, then the
# smoke test of the *built* packages on each runtime. Ends with one line: "N passed, M failed".
# Expects `scripts/setup.sh` to have run (install + build).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="$ROOT/.test-results"
rm -rf "$OUT" && mkdir -p "$OUT"
BIN="$ROOT/node_modules/.bin"
VITEST="$ROOT/node_modules/vitest/vitest.mjs"
NODE24=(npx -y -p node@24 -- node)
ONLY="${SWITCHBOARD_RUNTIMES:-node20 node24 bun deno}"

run_vitest() {
  local name=$1; shift
  echo "::group:: vitest on $name"
  "$@" run --reporter=default --reporter=json --outputFile.json="$OUT/vitest-$name.json" 2>&1 | tee "$OUT/vitest-$name.log" | tail -n 40
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
    deno)
      run_vitest deno "$BIN/deno" run -A "$VITEST"
      run_smoke deno "$BIN/deno" run -A "$OUT/smoke/smoke.mjs" ;;
    *) echo "unknown runtime $rt" ;;
  esac
done

node scripts/summarize-results.mjs "$OUT" $ONLY
