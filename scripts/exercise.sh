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
script=exercise
front="http://127.0.0.1:$front_port"
# shellcheck source=scripts/lib/local.sh
. "$root/scripts/lib/local.sh"

need_tool node "apt-get install -y nodejs"
need_tool nginx "apt-get install -y nginx"
need_tool curl "apt-get install -y curl"
if [ "$mode" = v3 ]; then
  need_tool redis-server "apt-get install -y redis-server"
  need_tool redis-cli "apt-get install -y redis-tools"
fi
port_in_use "$front_port" && die "port $front_port is in use; pass another front port"
taken+="$front_port "

NO_BUILD=${EXERCISE_NO_BUILD:-} build
start_work_dir
start_idp "$front" $((front_port + 1))
[ "$mode" = v3 ] && start_redis $((idp_port + 1))

upstreams=""
host_ports=()
host_pids=()
next=$((front_port + 10))
for i in $(seq "$replicas"); do
  free_port port "$next"
  next=$((port + 1))
  host_ports+=("$port")
  CLIENT_TITLE="Scaling exercise $mode" start_app "replica-$i" "$port" "$front" test-host
  host_pids+=("$app_pid")
  upstreams+="        server 127.0.0.1:$port max_fails=0;"$'\n'
  if [ "$i" = 1 ]; then
    # The first start may compile the component; the others then load the cached code.
    say "starting replica-1 on 127.0.0.1:$port (the first start may compile the component)"
    wait_for_line "$app_pid" "$work/replica-1.stdout.log" '^listening on ' 600 >/dev/null ||
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
