#!/bin/bash
# Runs bun-steps.mjs once per step set against an origin serving /small, interleaved for ROUNDS
# rounds, and prints req/s and the probe's CPU per request (utime+stime from /proc). On a noisy VM
# compare the lowest CPU per request of each set, not one round.
#   UPSTREAM=http://127.0.0.1:18090 ROUNDS=5 ./bun-steps.sh "" ip signal "ip,signal,timeout,abort,timer,pairs,buffer"
# (an empty argument is the floor). The origin can be the benchmark's: node -e "import('../lib/nginx.mjs').then(m => console.log(m.originConfig({ dir: '/tmp/sb-origin', port: 18090 }).join(' ')))"
# then `taskset -c 0 nginx <those arguments>`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bun="$here/../../node_modules/bun/bin/bun.exe" # the binary itself, so $! is the process we measure
port=${PORT:-18093}
if [ $# -gt 0 ]; then sets=("$@"); else sets=("" ip signal timeout abort timer pairs buffer "ip,signal,timeout,abort,timer,pairs,buffer"); fi
ticks=$(getconf CLK_TCK)
# A leftover process on the port would be measured instead of the probe (and look fast).
if ss -ltn | grep -q "127.0.0.1:$port "; then echo "port $port is already in use: stop what listens there first" >&2; exit 1; fi
for round in $(seq 1 "${ROUNDS:-3}"); do
  for s in "${sets[@]}"; do
    STEPS=$s PORT=$port UPSTREAM=${UPSTREAM:?set UPSTREAM} taskset -c 1 "$bun" "$here/bun-steps.mjs" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/small" && break; sleep 0.1; done
    kill -0 "$pid" 2> /dev/null || { echo "the probe exited at start (see: STEPS/VARIANT, the port)" >&2; exit 1; }
    taskset -c 0 wrk -t1 -c50 -d"${WARMUP:-3}"s "http://127.0.0.1:$port/small" > /dev/null
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(taskset -c 0 wrk -t1 -c50 -d"${SECONDS_PER_RUN:-3}"s "http://127.0.0.1:$port/small")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "round $round  ${s:-floor}  req/s=$rps  cpu_us/req=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v t="$ticks" 'BEGIN { printf "%.0f", (b - a) / t * 1e6 / n }')"
    kill "$pid"; wait "$pid" 2> /dev/null || true
  done
done
