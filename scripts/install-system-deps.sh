#!/usr/bin/env bash
# Installs the Debian packages CommuniTV needs, only those missing. As root it runs apt-get;
# otherwise it prints the exact apt line (and what to do about the services Debian starts) and fails.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
# Debian starts redis-server, mosquitto, nginx and postgresql as system services on install; ours
# run under `make run` with our own configs, so theirs must not hold 6379, 1883 or 8000.
services=()
for svc in redis-server mosquitto nginx postgresql; do
  for pkg in "${missing[@]}"; do [ "$pkg" = "$svc" ] && services+=("$svc"); done
done
if [ "$(id -u)" -eq 0 ]; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -q
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
  for svc in redis-server mosquitto nginx postgresql; do
    (command -v systemctl >/dev/null && systemctl disable --now "$svc" >/dev/null 2>&1) || true
    (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
  done
else
  echo "Missing system packages. Run as root (one line), then run make again:" >&2
  line="sudo apt-get install -y --no-install-recommends ${missing[*]}"
  if [ ${#services[@]} -gt 0 ]; then
    line="$line && sudo systemctl disable --now ${services[*]}"
  fi
  echo "  $line" >&2
  if [ ${#services[@]} -gt 0 ]; then
    echo "Debian starts ${services[*]} as system services on install; CommuniTV runs its own under 'make run'," >&2
    echo "so the line above also stops and disables Debian's (they would hold ports 6379/1883/8000). To keep" >&2
    echo "them, run ours on other ports instead: COMMUNITV_REDIS_URL=redis://127.0.0.1:6380/0" >&2
    echo "COMMUNITV_MQTT_URL=mqtt://127.0.0.1:1884 make run (see README, 'Installing')." >&2
  fi
  exit 1
fi
