# Shared by scripts/dev.sh and scripts/exercise.sh (sourced, not run): building
# the component, starting the test IdP, Redis and the app on loopback, and
# stopping all of it on exit. The caller sets `root` and `script` first.

say() { printf '%s\n' "$*"; }
die() {
  printf '%s: %s\n' "$script" "$*" >&2
  exit 1
}

# One clear line when a tool is missing, saying how to get it ($2).
need_tool() {
  command -v "$1" >/dev/null || die "$1 is missing: $2, then run this again"
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sets the variable named $1 to a free port at or above $2, not handed out before.
taken=" "
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

# Waits up to $3 seconds for $2/healthz to answer 200 while process $1 runs.
wait_for_health() {
  local pid=$1 url=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && return 0
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

# Builds the component, and the test host unless $1 is "no-host"; one line on failure.
build() {
  wasm="$root/target/wasm32-wasip2/release/oidc_client.wasm"
  host_bin=${SPIN_TEST_HOST:-$root/target/debug/spin-test-host}
  if [ "${NO_BUILD:-}" != 1 ]; then
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 ||
      die "the Rust target wasm32-wasip2 is missing: run rustup target add wasm32-wasip2"
    say "building the component (cargo build --target wasm32-wasip2 --release -p oidc-client)"
    (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --quiet --target wasm32-wasip2 --release -p oidc-client) ||
      die "the component did not build: fix the error above, then run this again"
    if [ "${1:-}" != no-host ] && [ -z "${SPIN_TEST_HOST:-}" ]; then
      say "building the test host (cargo build -p spin-test-host)"
      (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --quiet -p spin-test-host) ||
        die "the test host did not build: fix the error above, then run this again"
    fi
  fi
  [ -f "$wasm" ] || die "$wasm is missing: cargo build --target wasm32-wasip2 --release -p oidc-client"
  if [ "${1:-}" != no-host ]; then
    [ -x "$host_bin" ] || die "$host_bin is missing: cargo build -p spin-test-host"
  fi
  if [ ! -d "$root/testing/idp/node_modules/oidc-provider" ]; then
    say "installing the test IdP's packages (npm ci --prefix testing/idp)"
    npm ci --prefix "$root/testing/idp" --no-audit --no-fund --silent ||
      die "npm ci --prefix testing/idp failed: check that the npm registry is reachable"
  fi
}

# Everything started is in `pids`; on exit it gets SIGTERM, then SIGKILL after
# 5 s, and the work directory goes.
pids=()
runtime_config=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say ""
    say "stopping ${#pids[@]} processes"
    kill -TERM "${pids[@]}" 2>/dev/null || true
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
start_work_dir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$script.XXXXXX")
  trap stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Starts the test IdP for an app at $1 on a free port at or above $2; sets
# `issuer`, `idp_port` and `client_secret`.
start_idp() {
  local front=$1
  client_secret="dev-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  free_port idp_port "$2"
  say "starting the test IdP on 127.0.0.1:$idp_port"
  (
    cd "$root/testing/idp"
    IDP_PORT=$idp_port IDP_CLIENT_SECRET=$client_secret \
      IDP_REDIRECT_URIS="$front/callback" IDP_POST_LOGOUT_REDIRECT_URIS="$front/" \
      exec node server.js >"$work/idp.stdout.log" 2>"$work/idp.stderr.log"
  ) &
  pids+=($!)
  issuer=$(wait_for_line "${pids[-1]}" "$work/idp.stdout.log" '^oidc-provider listening on ' 60) ||
    failed "the test IdP did not start" "$work/idp.stderr.log"
  issuer=${issuer#oidc-provider listening on }
}

# Starts redis-server on a free port at or above $1 and writes Spin's runtime
# config that puts the `default` store there; sets `redis_port` and
# `runtime_config` (the arguments for the app).
start_redis() {
  free_port redis_port "$1"
  say "starting redis-server on 127.0.0.1:$redis_port"
  mkdir -p "$work/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$work/redis" --logfile '' >"$work/redis.log" 2>&1 &
  pids+=($!)
  local _
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] ||
    failed "redis-server did not answer PING" "$work/redis.log"
  # Spin's runtime config syntax (what `spin up --runtime-config-file` reads and
  # what spin-operator renders into the pods).
  cat >"$work/runtime-config.toml" <<EOF
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:$redis_port"
EOF
  runtime_config=(--runtime-config-file "$work/runtime-config.toml")
}

# Starts one app process named $1 on port $2 for the base URL $3, with its own
# state directory, run by $4 ("spin" for `spin up`, else the test host); the
# variables come from the environment only (SPIN_VARIABLE_*), as `spin up` reads
# them. Sets `app_pid`.
start_app() {
  local name=$1 port=$2 base=$3 runner=$4
  (
    cd "$root"
    # Only this app's variables: nothing SPIN_VARIABLE_* from the caller's shell.
    for v in $(env | sed -n 's/^\(SPIN_VARIABLE_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
    export SPIN_VARIABLE_CLIENT_ID=client1
    export SPIN_VARIABLE_CLIENT_SECRET=$client_secret
    export SPIN_VARIABLE_OIDC_ISSUER_URL=$issuer
    export SPIN_VARIABLE_OIDC_IDP_ORIGIN=http://127.0.0.1:$idp_port
    export SPIN_VARIABLE_CLIENT_BASE_URL=$base
    export SPIN_VARIABLE_POD_NAME=$name
    export SPIN_VARIABLE_CLIENT_TITLE=${CLIENT_TITLE:-Confidential Client}
    # Its own state directory: the local store of this "pod" alone.
    if [ "$runner" = spin ]; then
      exec spin up --from "$root/spin.toml" --listen "127.0.0.1:$port" "${runtime_config[@]}" \
        --state-dir "$work/state/$name" >"$work/$name.stdout.log" 2>"$work/$name.stderr.log"
    fi
    exec "$host_bin" --manifest "$root/spin.toml" --listen "127.0.0.1:$port" "${runtime_config[@]}" \
      --state-dir "$work/state/$name" >"$work/$name.stdout.log" 2>"$work/$name.stderr.log"
  ) &
  app_pid=$!
  pids+=("$app_pid")
}
