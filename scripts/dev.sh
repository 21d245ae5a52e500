#!/usr/bin/env bash
# The whole app on this machine in one command, to try it in a browser: the
# test IdP (testing/idp, installed on first use), the component built, and
# served by `spin up` when a `spin` CLI is on PATH, otherwise by the project's
# test host; the local key-value store, or Redis with --redis.
#
#   scripts/dev.sh [--redis] [--port PORT]     (default port 3000)
#
# Prints the URL, a user name to log in with and how to stop. Ctrl-C stops
# everything it started. Everything listens on 127.0.0.1; logs live in a
# mktemp directory that is removed on exit. DEV_RUNNER=test-host uses the
# test host even when spin is on PATH; NO_BUILD=1 skips the build.
set -euo pipefail

usage() {
  echo "usage: $0 [--redis] [--port PORT]" >&2
  exit 2
}

redis=false
port=3000
while [ $# -gt 0 ]; do
  case "$1" in
    --redis) redis=true ;;
    --port)
      [ $# -ge 2 ] || usage
      port=$2
      shift
      ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
  shift
done
[[ "$port" =~ ^[1-9][0-9]*$ ]] && ((port < 65536)) || usage

root=$(cd "$(dirname "$0")/.." && pwd)
script=dev
# shellcheck source=scripts/lib/local.sh
. "$root/scripts/lib/local.sh"

need_tool node "apt-get install -y nodejs"
need_tool npm "apt-get install -y npm"
need_tool curl "apt-get install -y curl"
need_tool cargo "install rustup (https://rustup.rs)"
if $redis; then
  need_tool redis-server "apt-get install -y redis-server"
  need_tool redis-cli "apt-get install -y redis-tools"
fi
port_in_use "$port" && die "port $port is in use: stop what listens there or pass --port PORT"
taken+="$port "

runner=test-host
if command -v spin >/dev/null && [ "${DEV_RUNNER:-}" != test-host ]; then
  runner=spin
fi
if [ "$runner" = spin ]; then build no-host; else build; fi

base="http://127.0.0.1:$port"
start_work_dir
start_idp "$base" $((port + 1))
$redis && start_redis $((idp_port + 1))

if [ "$runner" = spin ]; then
  say "starting the app with spin up ($(spin --version 2>/dev/null | head -n1))"
else
  say "starting the app with the test host (no spin on PATH; the first start compiles the component)"
fi
CLIENT_TITLE="Confidential Client (dev)" start_app dev-1 "$port" "$base" "$runner"
wait_for_health "$app_pid" "$base" 600 || failed "the app did not start" "$work/dev-1.stderr.log"

store="the local store: $work/state/dev-1/sqlite_key_value.db"
$redis && store="Redis: redis-cli -p $redis_port keys 'sess:*'"
say ""
say "== the app is running =="
say "open      $base/"
say "log in    as alice (any user name and any password) at the test IdP, $issuer"
say "sessions  $store"
say "logs      $work"
say "stop      Ctrl-C stops everything this started"

# Until Ctrl-C, or until one of the processes ends on its own.
set +e
wait -n "${pids[@]}"
status=$?
set -e
say "a process ended on its own (status $status); the last lines of its logs:" >&2
for log in "$work"/*.stderr.log ${redis_port:+"$work/redis.log"}; do
  [ -s "$log" ] || continue
  say "--- $log ---" >&2
  tail -n 10 "$log" >&2
done
exit 1
