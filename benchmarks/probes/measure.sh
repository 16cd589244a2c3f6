# Sourced by the probe runners (bun-body.sh, bun-steps.sh): one probe process on core 1, loaded by
# wrk on core 0, measured by its CPU time in /proc.
set -euo pipefail
bun="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../node_modules/bun/bin/bun.exe" # the binary itself, so $! is the process we measure
ticks=$(getconf CLK_TCK)

# probe_port_free PORT: exits when something already listens there (it would be measured instead of
# the probe, and look fast).
probe_port_free() {
  if ss -ltn | grep -q "127.0.0.1:$1 "; then echo "port $1 is already in use: stop what listens there first" >&2; exit 1; fi
}

# probe_measure LABEL URL WARMUP_S SECONDS SCRIPT [NAME=VALUE ...]: starts SCRIPT under Bun with the
# given environment, waits for URL to answer, loads it WARMUP_S seconds, then SECONDS more, and
# prints "LABEL  req/s=…  cpu_us/req=…" (CPU per request over the measured requests).
probe_measure() {
  local label=$1 url=$2 warmup=$3 seconds=$4 script=$5
  shift 5
  env "$@" taskset -c 1 "$bun" "$script" > /dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
  kill -0 "$pid" 2> /dev/null || { echo "the probe exited at start ($*)" >&2; exit 1; }
  taskset -c 0 wrk -t1 -c50 -d"$warmup"s "$url" > /dev/null
  local t0 t1 out n rps
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(taskset -c 0 wrk -t1 -c50 -d"$seconds"s "$url")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$label  req/s=$rps  cpu_us/req=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v t="$ticks" 'BEGIN { printf "%.0f", (b - a) / t * 1e6 / n }')"
  kill "$pid"; wait "$pid" 2> /dev/null || true
}
