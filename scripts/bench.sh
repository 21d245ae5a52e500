#!/usr/bin/env bash
# Benchmarks (not part of the test command): builds the component in release
# mode, the test host and the driver optimised for speed, then measures
# GET /user (v2 and v3), GET /, the login round trip and the floors (/healthz,
# /readyz) with wrk, under the test host and, when `spin` is on PATH, under
# `spin up`. Prints a markdown table and writes it to bench/results/.
#
#   scripts/bench.sh [--duration SECS] [--warmup SECS] [--connections 1,16]
#   scripts/bench.sh --profile     # perf profiles of /readyz and /user instead
#
# Needs what the tests need (README), plus the Debian packages wrk (and
# linux-perf for --profile).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -d testing/idp/node_modules ] || npm ci --prefix testing/idp --no-audit --no-fund

cargo build --target wasm32-wasip2 --release -p oidc-client
if [[ " $* " == *" --profile "* ]]; then
  cargo build --target wasm32-wasip2 --profile profiling -p oidc-client
fi
cargo build --profile bench-host -p spin-test-host -p bench

SPIN_TEST_HOST="$PWD/target/bench-host/spin-test-host" exec target/bench-host/bench "$@"
