#!/usr/bin/env bash
# Load-test pushgate on this machine with one command:
#   loadtests/run.sh [-t SECONDS] [-u USERS] [-r SPAWN_RATE]
# Creates loadtests/.venv (locust, gevent) when missing, starts a private stack on 127.0.0.1
# (Redis-compatible server, APNs and FCM stand-ins when present, `pushgate serve`, two
# `pushgate worker`, `pushgate radius`), seeds two tenants, runs locust headless for a
# bounded time, writes CSV, HTML and a JSON summary to loadtests/results/, stops everything,
# and exits non-zero when a threshold (loadtests/thresholds.toml, LOADTEST_* overrides)
# fails. See loadtests/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
DURATION="${LOADTEST_DURATION:-60}"
USERS="${LOADTEST_USERS:-40}"
SPAWN_RATE="${LOADTEST_SPAWN_RATE:-10}"
while getopts "t:u:r:h" opt; do
  case "$opt" in
    t) DURATION="$OPTARG" ;;
    u) USERS="$OPTARG" ;;
    r) SPAWN_RATE="$OPTARG" ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
for value in "$DURATION" "$USERS" "$SPAWN_RATE"; do
  [[ "$value" =~ ^[0-9]+$ ]] || { echo "run.sh: -t, -u and -r take whole numbers" >&2; exit 2; }
done

APP_PY="${LOADTEST_APP_PYTHON:-$REPO/.venv/bin/python}"
[ -x "$APP_PY" ] || { echo "run.sh: $APP_PY missing: set up the project first (scripts/check)" >&2; exit 2; }
VENV="$HERE/.venv"
# shellcheck source=loadtests/venv.sh
. "$HERE/venv.sh"
ensure_locust_venv "$HERE"

RESULTS="$HERE/results"
LOGS="$RESULTS/logs"
rm -rf "$RESULTS"
mkdir -p "$LOGS"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pushgate-loadtest.XXXXXX")"
PIDS=()

stop_all() {
  local status=$? pid i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # newest first, Redis last; 10 s each at most
    pid="${PIDS[i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

py() { "$APP_PY" -c "$@"; }
free_port() { py 'from pushgate.embedded import free_port; print(free_port())'; }

# wait_for WHAT SECONDS PYTHON-EXPRESSION: poll every 0.1 s until the expression is true
wait_for() {
  "$APP_PY" - "$@" <<'EOF'
import json, socket, sys, time, urllib.request
what, limit, expr = sys.argv[1], float(sys.argv[2]), sys.argv[3]

def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False

def redis_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False

def json_line(path):
    try:
        return any(l.startswith("{") and '"port"' in l for l in open(path).read().splitlines())
    except OSError:
        return False

deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    if eval(expr):
        sys.exit(0)
    time.sleep(0.1)
sys.exit(f"run.sh: timed out waiting for {what}")
EOF
}

# json_get FILE KEY: a field of the first JSON object line in FILE
json_get() {
  py 'import json,sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        print(json.loads(line)[sys.argv[2]]); break' "$1" "$2"
}

start() { # NAME COMMAND...: run in $WORK (no stray .env), output to results/logs/NAME.log
  local name="$1"
  shift
  (cd "$WORK" && exec "$@") >"$LOGS/$name.log" 2>&1 &
  PIDS+=("$!")
}

for name in $(compgen -e | grep '^PUSHGATE_' || true); do unset "$name"; done

echo "== Redis-compatible server"
REDIS_PORT="$(free_port)"
REDIS_BIN="$(py 'from pushgate.embedded import find_server_binary; print(find_server_binary())')"
mkdir -p "$WORK/redis"
start redis "$REDIS_BIN" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save "" \
  --appendonly no --protected-mode yes --daemonize no --loglevel warning
wait_for "redis" 10 "redis_ok($REDIS_PORT)"

PORT="$(free_port)"
export PUSHGATE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
PUSHGATE_SECRET_KEY="$(py 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
export PUSHGATE_SECRET_KEY
export PUSHGATE_HOST=127.0.0.1
export PUSHGATE_PORT="$PORT"
export PUSHGATE_PUBLIC_URL="http://127.0.0.1:$PORT"
export PUSHGATE_WEBAUTHN_RP_ID=localhost
export PUSHGATE_WEBAUTHN_ORIGINS="http://localhost:$PORT"
export PUSHGATE_LOG_LEVEL="${LOADTEST_LOG_LEVEL:-info}"
export PUSHGATE_DRAIN_SECONDS=5
APNS_TOPIC=com.example.pushgate

if [ -f "$REPO/pusher/standins/__main__.py" ]; then
  echo "== APNs and FCM stand-ins"
  start apns-standin "$APP_PY" -m pusher.standins apns --state-dir "$WORK/apns"
  start fcm-standin "$APP_PY" -m pusher.standins fcm --state-dir "$WORK/fcm"
  wait_for "the APNs stand-in" 20 "json_line('$LOGS/apns-standin.log')"
  wait_for "the FCM stand-in" 20 "json_line('$LOGS/fcm-standin.log')"
  export PUSHGATE_APNS_KEY_FILE="$(json_get "$LOGS/apns-standin.log" key_file)"
  export PUSHGATE_APNS_KEY_ID="$(json_get "$LOGS/apns-standin.log" key_id)"
  export PUSHGATE_APNS_TEAM_ID="$(json_get "$LOGS/apns-standin.log" team_id)"
  export PUSHGATE_APNS_TOPIC="$APNS_TOPIC"
  export PUSHGATE_APNS_ENDPOINT="$(json_get "$LOGS/apns-standin.log" url)"
  export PUSHGATE_APNS_CA_FILE="$(json_get "$LOGS/apns-standin.log" ca_file)"
  export PUSHGATE_FCM_CREDENTIALS_FILE="$(json_get "$LOGS/fcm-standin.log" service_account_file)"
  export PUSHGATE_FCM_PROJECT_ID="$(json_get "$LOGS/fcm-standin.log" project_id)"
  export PUSHGATE_FCM_ENDPOINT="$(json_get "$LOGS/fcm-standin.log" url)"
  export PUSHGATE_FCM_CA_FILE="$(json_get "$LOGS/fcm-standin.log" ca_file)"
else
  echo "== no pusher/standins: devices use the in-app channel only"
fi
PLATFORMS="$(cd "$WORK" && py 'from pushgate.settings import load_settings
from pusher.providers.factory import build_providers
print(",".join([*sorted(build_providers(load_settings())), "none"]))')"
echo "   device platforms: $PLATFORMS"

echo "== pushgate serve on 127.0.0.1:$PORT and two workers"
start gateway "$APP_PY" -m pushgate.cli serve
WORKER_PORTS=("$(free_port)")
until WORKER_PORTS[1]="$(free_port)" && [ "${WORKER_PORTS[1]}" != "${WORKER_PORTS[0]}" ]; do :; done
for n in 0 1; do
  start "worker-$((n + 1))" env PUSHGATE_WORKER_METRICS_PORT="${WORKER_PORTS[n]}" \
    "$APP_PY" -m pushgate.cli worker
done
wait_for "the gateway" 30 "http_ok('http://127.0.0.1:$PORT/readyz')"
for n in 0 1; do
  wait_for "worker $((n + 1))" 30 "http_ok('http://127.0.0.1:${WORKER_PORTS[n]}/healthz')"
done

echo "== seeding tenants"
cli() { (cd "$WORK" && "$APP_PY" -m pushgate.cli "$@"); }
cli tenant create loadtest >"$WORK/load.json"
cli tenant create push-bomb-target >"$WORK/bomb.json"
cli apikey create "$(json_get "$WORK/load.json" tenant_id)" --role portal >"$WORK/load-key.json"
cli apikey create "$(json_get "$WORK/bomb.json" tenant_id)" --role portal >"$WORK/bomb-key.json"

echo "== pushgate radius for the VPN users (portal key of the load tenant)"
RADIUS_SECRET="$(py 'import secrets; print(secrets.token_urlsafe(24))')"
start radius env PUSHGATE_RADIUS_API_URL="http://127.0.0.1:$PORT" \
  PUSHGATE_RADIUS_API_KEY="$(json_get "$WORK/load-key.json" api_key)" \
  PUSHGATE_RADIUS_HOST=127.0.0.1 PUSHGATE_RADIUS_PORT=0 \
  PUSHGATE_RADIUS_CLIENTS="127.0.0.1=$RADIUS_SECRET" "$APP_PY" -m pushgate.cli radius
wait_for "pushgate radius" 30 "json_line('$LOGS/radius.log')"
RADIUS_PORT="$(json_get "$LOGS/radius.log" port)"

export LOADTEST_SEED="$WORK/seed.json"
py 'import json, sys
work, port, platforms, topic, radius_port, radius_secret = sys.argv[1:7]
def tenant(name):
    t, k = (json.load(open(f"{work}/{name}{s}.json")) for s in ("", "-key"))
    return {"tenant_id": t["tenant_id"], "admin_key": t["admin_key"], "portal_key": k["api_key"]}
json.dump({"origin": f"http://localhost:{port}", "rp_id": "localhost", "load": tenant("load"),
           "bomb": tenant("bomb"), "platforms": platforms.split(","), "apns_topic": topic,
           "radius": {"port": int(radius_port), "secret": radius_secret}},
          open(f"{work}/seed.json", "w"))' "$WORK" "$PORT" "$PLATFORMS" "$APNS_TOPIC" \
  "$RADIUS_PORT" "$RADIUS_SECRET"

echo "== locust: $USERS users (+$SPAWN_RATE/s) for ${DURATION}s against http://127.0.0.1:$PORT"
status=0
(cd "$WORK" && timeout --kill-after=10 "$((DURATION + 120))" "$VENV/bin/locust" \
  -f "$HERE/locustfile.py" --headless --host "http://127.0.0.1:$PORT" \
  -u "$USERS" -r "$SPAWN_RATE" -t "${DURATION}s" --stop-timeout 10 \
  --csv "$RESULTS/run" --html "$RESULTS/report.html" --only-summary --loglevel WARNING) \
  || status=$?

save_metrics() { # URL FILE
  py 'import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as resp:
    open(sys.argv[2], "wb").write(resp.read())' "$1" "$2" || true
}
save_metrics "http://127.0.0.1:$PORT/metrics" "$RESULTS/gateway-metrics.txt"
for n in 0 1; do
  save_metrics "http://127.0.0.1:${WORKER_PORTS[n]}/metrics" "$RESULTS/worker-$((n + 1))-metrics.txt"
done
echo "== results in $RESULTS (report.html, run_*.csv, run_summary.json, logs/)"
[ "$status" -eq 0 ] && echo "== PASS" || echo "== FAIL (locust exit $status)"
exit "$status"
