#!/bin/bash
# Runs bun-body.mjs once per variant against an origin serving /1mib, interleaved for ROUNDS
# rounds, and prints req/s and the probe's CPU per request (utime+stime from /proc).
#   UPSTREAM=http://127.0.0.1:18090 ROUNDS=2 ./bun-body.sh [variant ...]
# The origin can be the benchmark's: node -e "import('../lib/nginx.mjs').then(m => console.log(m.originConfig({ dir: '/tmp/sb-origin', port: 18090 }).join(' ')))"
# then `taskset -c 0 nginx <those arguments>`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bun="$here/../../node_modules/bun/bin/bun.exe" # the binary itself, so $! is the process we measure
port=${PORT:-18092}
if [ $# -gt 0 ]; then variants=("$@"); else variants=(floor passthrough pull0 pull1 whole); fi
ticks=$(getconf CLK_TCK)
# A leftover process on the port would be measured instead of the probe (and look fast).
if ss -ltn | grep -q "127.0.0.1:$port "; then echo "port $port is already in use: stop what listens there first" >&2; exit 1; fi
for round in $(seq 1 "${ROUNDS:-2}"); do
  for v in "${variants[@]}"; do
    VARIANT=$v PORT=$port UPSTREAM=${UPSTREAM:?set UPSTREAM} taskset -c 1 "$bun" "$here/bun-body.mjs" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/1mib" && break; sleep 0.1; done
    kill -0 "$pid" 2> /dev/null || { echo "the probe exited at start (see: STEPS/VARIANT, the port)" >&2; exit 1; }
    taskset -c 0 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/1mib" > /dev/null
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    rps=$(taskset -c 0 wrk -t1 -c50 -d"${SECONDS_PER_RUN:-5}"s "http://127.0.0.1:$port/1mib" | awk '/Requests\/sec/ {print $2}')
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    echo "round $round  $v  req/s=$rps  cpu_us/req=$(awk -v a="$t0" -v b="$t1" -v r="$rps" -v s="${SECONDS_PER_RUN:-5}" -v t="$ticks" 'BEGIN { printf "%.0f", (b - a) / t * 1e6 / (r * s) }')"
    kill "$pid"; wait "$pid" 2> /dev/null || true
  done
done
