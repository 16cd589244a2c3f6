#!/bin/bash
# Runs bun-body.mjs once per variant against an origin serving /1mib, interleaved for ROUNDS
# rounds, and prints req/s and the probe's CPU per request (utime+stime from /proc).
#   UPSTREAM=http://127.0.0.1:18090 ROUNDS=2 ./bun-body.sh [variant ...]
# The origin can be the benchmark's: node -e "import('../lib/nginx.mjs').then(m => console.log(m.originConfig({ dir: '/tmp/sb-origin', port: 18090 }).join(' ')))"
# then `taskset -c 0 nginx <those arguments>`.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/measure.sh"
port=${PORT:-18092}
if [ $# -gt 0 ]; then variants=("$@"); else variants=(floor passthrough pull0 pull1 whole); fi
probe_port_free "$port"
for round in $(seq 1 "${ROUNDS:-2}"); do
  for v in "${variants[@]}"; do
    probe_measure "round $round  $v" "http://127.0.0.1:$port/1mib" 2 "${SECONDS_PER_RUN:-5}" "$here/bun-body.mjs" \
      VARIANT="$v" PORT="$port" UPSTREAM="${UPSTREAM:?set UPSTREAM}"
  done
done
