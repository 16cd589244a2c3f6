#!/bin/bash
# Runs bun-steps.mjs once per step set against an origin serving /small, interleaved for ROUNDS
# rounds, and prints req/s and the probe's CPU per request (utime+stime from /proc). On a noisy VM
# compare the lowest CPU per request of each set, not one round.
#   UPSTREAM=http://127.0.0.1:18090 ROUNDS=5 ./bun-steps.sh "" ip signal "ip,signal,timeout,abort,timer,pairs,buffer"
# (an empty argument is the floor). The origin can be the benchmark's: node -e "import('../lib/nginx.mjs').then(m => console.log(m.originConfig({ dir: '/tmp/sb-origin', port: 18090 }).join(' ')))"
# then `taskset -c 0 nginx <those arguments>`.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/measure.sh"
port=${PORT:-18093}
if [ $# -gt 0 ]; then sets=("$@"); else sets=("" ip signal timeout abort timer pairs buffer "ip,signal,timeout,abort,timer,pairs,buffer"); fi
probe_port_free "$port"
for round in $(seq 1 "${ROUNDS:-3}"); do
  for s in "${sets[@]}"; do
    probe_measure "round $round  ${s:-floor}" "http://127.0.0.1:$port/small" "${WARMUP:-3}" "${SECONDS_PER_RUN:-3}" "$here/bun-steps.mjs" \
      STEPS="$s" PORT="$port" UPSTREAM="${UPSTREAM:?set UPSTREAM}"
  done
done
