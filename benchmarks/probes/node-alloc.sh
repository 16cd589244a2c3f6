#!/usr/bin/env bash
# Bytes allocated per request by a Node proxy on small GETs, and the functions that allocate them.
# Usage (from the repo root, an nginx origin from `pnpm bench` not needed: this starts its own):
#   bash benchmarks/probes/node-alloc.sh gateway   # apps/gateway/dist/cli.js, one route to the origin
#   bash benchmarks/probes/node-alloc.sh floor     # ../shared/bench/floor-node.js
#   CLI=path/to/other/cli.js bash benchmarks/probes/node-alloc.sh gateway   # another build
#   TOP=40 KEEP=/tmp/a.heapprofile …   # more lines; keep the profile (opens in Chrome DevTools' Memory tab)
# The proxy runs on core 1 with node-alloc.mjs preloaded, wrk on core 0 warms it for 4 s, then
# sampling covers 5 s of load. Needs nginx and wrk (see benchmarks/README.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
what=${1:-gateway}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2> /dev/null || true; nginx -p "$dir" -c "$dir/origin.conf" -s stop 2> /dev/null || true; rm -rf "$dir"' EXIT
source "$here/measure.sh"
origin_port=18181 proxy_port=18190
probe_port_free $origin_port
probe_port_free $proxy_port

# The bench's own origin (same bodies, same keep-alive), on core 0.
node --input-type=module -e "
import { originConfig } from '$root/benchmarks/lib/nginx.mjs'
process.stdout.write(originConfig({ dir: '$dir', port: $origin_port }).join('\n'))" > "$dir/args"
mapfile -t origin_args < "$dir/args"
taskset -c 0 nginx "${origin_args[@]}" > /dev/null 2>&1 &
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$origin_port/small" && break; sleep 0.1; done

case $what in
  gateway)
    cat > "$dir/gw.yaml" << YAML
server: { host: 127.0.0.1, port: $proxy_port }
upstreams:
  backend:
    targets: [ { url: "http://127.0.0.1:$origin_port" } ]
routes:
  - { name: all, match: { path: /* }, upstream: backend }
YAML
    cmd=("${CLI:-$root/apps/gateway/dist/cli.js}" --config "$dir/gw.yaml") ;;
  floor) cmd=("$root/../shared/bench/floor-node.js") ;;
  *) echo "usage: node-alloc.sh gateway|floor" >&2; exit 2 ;;
esac
PORT=$proxy_port UPSTREAM="http://127.0.0.1:$origin_port" NODE_PATH="$root/node_modules" NODE_ENV=production ALLOC_OUT="$dir/alloc.json" \
  taskset -c 1 node --import "$here/node-alloc.mjs" "${cmd[@]}" > "$dir/proxy.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$proxy_port/small"
for _ in $(seq 1 50); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
kill -0 "$pid" 2> /dev/null || { cat "$dir/proxy.log" >&2; exit 1; }
taskset -c 0 wrk -t1 -c50 -d4s "$url" > /dev/null
kill -USR1 "$pid"; sleep 0.5
n=$(taskset -c 0 wrk -t1 -c50 -d5s "$url" | awk '/requests in/ {print $1}')
kill -USR2 "$pid"
for _ in $(seq 1 50); do [ -s "$dir/alloc.json" ] && break; sleep 0.1; done
sleep 0.5
[ -n "${KEEP:-}" ] && cp "$dir/alloc.json" "$KEEP"
node "$here/node-alloc-report.mjs" "$dir/alloc.json" "$n" "${TOP:-25}"
