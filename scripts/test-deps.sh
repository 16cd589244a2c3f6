#!/usr/bin/env bash
# Installs the system packages the tests use (real Redis, real Chromium, Prometheus's promtool for
# the metrics exposition check) when they are missing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
# promtool ships in Debian's `prometheus` package; its Recommends (prometheus-node-exporter, a
# daemon) is not needed for `promtool check metrics`, so it goes in a second, no-recommends install.
lean=()
command -v promtool >/dev/null || lean+=(prometheus)
[ ${#missing[@]} -eq 0 ] && [ ${#lean[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing ${missing[*]} ${lean[*]} from Debian's packages"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
[ ${#missing[@]} -eq 0 ] || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
[ ${#lean[@]} -eq 0 ] || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
