#!/usr/bin/env bash
# Run pushgate as a scaled-out deployment on this machine, under load, with faults:
#   loadtests/cluster/run.sh [-t SECONDS] [-u USERS] [-r SPAWN_RATE] [--faults LIST] ...
# A six-node Valkey cluster (3 primaries + 3 replicas), the APNs/FCM stand-ins, three
# `pushgate serve` behind HAProxy (/readyz health checks, websockets passed through) and two
# `pushgate worker`, driven by the load-test users through HAProxy; a primary, a gateway and a
# worker are killed and a primary is paused during the run. Loopback only, bounded in time,
# every process stopped by its PID. Report: loadtests/results/cluster/report.md. Needs
# Debian's haproxy (installed here when missing and run as root). See loadtests/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
LOADTESTS="$(dirname "$HERE")"
REPO="$(dirname "$LOADTESTS")"
case "${1:-}" in -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

APP_PY="${LOADTEST_APP_PYTHON:-$REPO/.venv/bin/python}"
[ -x "$APP_PY" ] || { echo "run.sh: $APP_PY missing: set up the project first (scripts/check)" >&2; exit 2; }
if ! command -v haproxy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's haproxy"
    flock /tmp/apt.lock apt-get install -y -qq haproxy >/dev/null
  else
    echo "run.sh: haproxy is not installed (apt-get install haproxy)" >&2
    exit 2
  fi
fi
# shellcheck source=loadtests/venv.sh
. "$LOADTESTS/venv.sh"
ensure_locust_venv "$LOADTESTS"

for name in $(compgen -e | grep '^PUSHGATE_' || true); do unset "$name"; done
cd "$REPO"
exec timeout --kill-after=30 3600 "$APP_PY" "$HERE/rig.py" --locust "$LOADTESTS/.venv/bin/locust" "$@"
