#!/usr/bin/env bash
# The horizontal-scaling exercise on one machine, to watch in a browser:
# N replicas of the app (the test host running the built component, pod names
# replica-1..N) behind nginx taking them strictly in turn, with the test IdP.
#
#   scripts/exercise.sh v2|v3 [N replicas, default 4] [front port, default 8080]
#
#   v2  no runtime config: every replica has its own local store (Spin's default
#       store, a SQLite file in the replica's own state directory, --state-dir), so
#       a login only works when /callback comes back to the replica that started
#       it, and a session only on the replica that created it. Like separate pods
#       only because each replica gets its own --state-dir: `spin up` processes
#       started on one spin.toml without it all use .spin/sqlite_key_value.db
#       beside it, and share that one store.
#   v3  every replica gets the same runtime config file, which puts the `default`
#       key-value store in one Redis: logins and sessions work on every replica.
#
# Builds the component and the test host when needed (EXERCISE_NO_BUILD=1 skips
# that; SPIN_TEST_HOST=PATH uses that host binary). Everything listens on
# 127.0.0.1; logs and config live in a mktemp directory. Ctrl-C stops it all.
set -euo pipefail

usage() {
  echo "usage: $0 v2|v3 [replicas (default 4)] [front port (default 8080)]" >&2
  exit 2
}

mode=${1:-}
replicas=${2:-4}
front_port=${3:-8080}
case "$mode" in v2 | v3) ;; *) usage ;; esac
[[ "$replicas" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$front_port" =~ ^[1-9][0-9]*$ ]] && ((front_port < 65536)) || usage

root=$(cd "$(dirname "$0")/.." && pwd)
front="http://127.0.0.1:$front_port"

say() { printf '%s\n' "$*"; }
die() {
  printf 'exercise: %s\n' "$*" >&2
  exit 1
}

for tool in node nginx curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y nodejs nginx curl)"
done
if [ "$mode" = v3 ]; then
  command -v redis-server >/dev/null || die "redis-server is missing (apt-get install -y redis-server)"
  command -v redis-cli >/dev/null || die "redis-cli is missing (apt-get install -y redis-tools)"
fi

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$front_port" && die "port $front_port is in use; pass another front port"

# ---------------------------------------------------------------- build
wasm="$root/target/wasm32-wasip2/release/oidc_client.wasm"
host_bin=${SPIN_TEST_HOST:-$root/target/debug/spin-test-host}
if [ "${EXERCISE_NO_BUILD:-}" != 1 ]; then
  say "building the component (cargo build --target wasm32-wasip2 --release -p oidc-client)"
  (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --quiet --target wasm32-wasip2 --release -p oidc-client)
  if [ -z "${SPIN_TEST_HOST:-}" ]; then
    say "building the test host (cargo build -p spin-test-host)"
    (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --quiet -p spin-test-host)
  fi
fi
[ -f "$wasm" ] || die "$wasm is missing: cargo build --target wasm32-wasip2 --release -p oidc-client"
[ -x "$host_bin" ] || die "$host_bin is missing: cargo build -p spin-test-host"
if [ ! -d "$root/testing/idp/node_modules/oidc-provider" ]; then
  say "installing the test IdP's packages (npm ci --prefix testing/idp)"
  npm ci --prefix "$root/testing/idp" --no-audit --no-fund --silent
fi

# ---------------------------------------------------------------- processes
work=$(mktemp -d "${TMPDIR:-/tmp}/exercise.XXXXXX")
pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say ""
    say "stopping ${#pids[@]} processes"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Whatever has not ended 5 s after SIGTERM gets SIGKILL.
    (
      trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
      sleep 5 &
      sleeper=$!
      wait "$sleeper"
      kill -KILL "${pids[@]}" 2>/dev/null
    ) &
    local watchdog=$!
    wait "${pids[@]}" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Sets the variable named $1 to a free port at or above $2, not handed out before.
taken=" $front_port "
free_port() {
  local p=$2
  while port_in_use "$p" || [[ "$taken" == *" $p "* ]]; do p=$((p + 1)); done
  taken+="$p "
  printf -v "$1" '%s' "$p"
}

# Waits up to $4 seconds for the file $2, written by process $1, to contain a line
# matching $3; prints it. Fails at once when the process has ended.
wait_for_line() {
  local pid=$1 file=$2 pattern=$3 deadline=$((SECONDS + $4))
  while ((SECONDS < deadline)); do
    if grep -m1 -E "$pattern" "$file" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# Fails with the tail of a log.
failed() {
  say "--- $2 ---" >&2
  tail -n 30 "$2" >&2 || true
  die "$1"
}

secret="exercise-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

free_port idp_port $((front_port + 1))
say "starting the test IdP on 127.0.0.1:$idp_port"
(
  cd "$root/testing/idp"
  IDP_PORT=$idp_port IDP_CLIENT_SECRET=$secret \
    IDP_REDIRECT_URIS="$front/callback" IDP_POST_LOGOUT_REDIRECT_URIS="$front/" \
    exec node server.js >"$work/idp.stdout.log" 2>"$work/idp.stderr.log"
) &
pids+=($!)
issuer=$(wait_for_line "${pids[-1]}" "$work/idp.stdout.log" '^oidc-provider listening on ' 30) ||
  failed "the IdP did not start" "$work/idp.stderr.log"
issuer=${issuer#oidc-provider listening on }

runtime_config=()
if [ "$mode" = v3 ]; then
  free_port redis_port $((idp_port + 1))
  say "starting redis-server on 127.0.0.1:$redis_port"
  mkdir -p "$work/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$work/redis" --logfile '' >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] ||
    failed "redis-server did not answer PING" "$work/redis.log"
  # Spin's runtime config syntax (what `spin up --runtime-config-file` reads and what
  # spin-operator renders into the pods); one file for every replica.
  cat >"$work/runtime-config.toml" <<EOF
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:$redis_port"
EOF
  runtime_config=(--runtime-config-file "$work/runtime-config.toml")
fi

upstreams=""
host_ports=()
host_pids=()
next=$((front_port + 10))
for i in $(seq "$replicas"); do
  free_port port "$next"
  next=$((port + 1))
  host_ports+=("$port")
  (
    cd "$root"
    # Only this replica's variables: nothing SPIN_VARIABLE_* from the caller's shell.
    for v in $(env | sed -n 's/^\(SPIN_VARIABLE_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
    export SPIN_VARIABLE_CLIENT_ID=client1
    export SPIN_VARIABLE_CLIENT_SECRET=$secret
    export SPIN_VARIABLE_OIDC_ISSUER_URL=$issuer
    export SPIN_VARIABLE_OIDC_IDP_ORIGIN=http://127.0.0.1:$idp_port
    export SPIN_VARIABLE_CLIENT_BASE_URL=$front
    export SPIN_VARIABLE_POD_NAME=replica-$i
    export SPIN_VARIABLE_CLIENT_TITLE="Scaling exercise $mode"
    # Its own state directory: the local store of this "pod" alone (with
    # `spin up`: spin up --state-dir DIR, one DIR per replica).
    exec "$host_bin" --manifest "$root/spin.toml" --listen "127.0.0.1:$port" "${runtime_config[@]}" \
      --state-dir "$work/state/replica-$i" \
      >"$work/replica-$i.stdout.log" 2>"$work/replica-$i.stderr.log"
  ) &
  pids+=($!)
  host_pids+=("$!")
  upstreams+="        server 127.0.0.1:$port max_fails=0;"$'\n'
  if [ "$i" = 1 ]; then
    # The first start may compile the component; the others then load the cached code.
    say "starting replica-1 on 127.0.0.1:$port (the first start may compile the component)"
    wait_for_line "$!" "$work/replica-1.stdout.log" '^listening on ' 600 >/dev/null ||
      failed "replica-1 did not start" "$work/replica-1.stderr.log"
  fi
done
for i in $(seq 2 "$replicas"); do
  say "starting replica-$i on 127.0.0.1:${host_ports[$((i - 1))]}"
  wait_for_line "${host_pids[$((i - 1))]}" "$work/replica-$i.stdout.log" '^listening on ' 300 >/dev/null ||
    failed "replica-$i did not start" "$work/replica-$i.stderr.log"
done

# nginx: one worker (one round-robin counter), a new upstream connection per request,
# no retry on the next upstream, no upstream ever marked down.
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log notice;
events { worker_connections 1024; }
http {
    log_format exercise '\$request_method \$request_uri \$status upstream=\$upstream_addr';
    access_log $work/nginx/access.log exercise;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream app {
$upstreams    }
    server {
        listen 127.0.0.1:$front_port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "close";
            proxy_next_upstream off;
            proxy_redirect off;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-Port \$server_port;
        }
    }
}
EOF
nginx_bin=$(command -v nginx)
"$nginx_bin" -e stderr -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>>"$work/nginx/error.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS -o /dev/null "$front/healthz" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$front/healthz" 2>/dev/null ||
  failed "nginx does not answer on $front" "$work/nginx/error.log"

say ""
say "== scaling exercise $mode: $replicas replicas behind $front (strict round-robin) =="
say "open      $front/"
say "log in    with any user name and any password at the test IdP ($issuer)"
for i in $(seq "$replicas"); do
  say "replica   replica-$i at http://127.0.0.1:${host_ports[$((i - 1))]}"
done
if [ "$mode" = v3 ]; then
  say "sessions  redis-cli -p $redis_port keys 'sess:*'"
  say "          redis-cli -p $redis_port get 'sess:<the oidc_session cookie, up to its dot>'"
else
  say "sessions  each replica keeps its own, in $work/state/replica-N/sqlite_key_value.db:"
  say "          expect \"Unknown login state\""
  say "          at /callback and /user working only on the replica that logged you in"
fi
say "front log tail -f $work/nginx/access.log"
say "logs      $work"
say "Ctrl-C stops everything and removes $work"

# Until Ctrl-C, or until one of the processes ends on its own.
set +e
wait -n "${pids[@]}"
status=$?
set -e
say "a process ended on its own (status $status); the last lines of the logs:" >&2
for log in "$work"/*.stderr.log "$work/nginx/error.log" ${redis_port:+"$work/redis.log"}; do
  [ -s "$log" ] || continue
  say "--- $log ---" >&2
  tail -n 10 "$log" >&2
done
exit 1
