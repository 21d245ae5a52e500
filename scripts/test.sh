#!/usr/bin/env bash
# Runs every test of the project: the component's unit and flow tests, the test
# host's tests, the Kubernetes manifest checks, and the end-to-end tests that run
# the built .wasm against a real OpenID Provider, Redis, nginx and Chromium.
#
# Prerequisites (see README): Rust with the wasm32-wasip2 target, Node 20+,
# python3 with venv, and the Debian packages redis-server, nginx, chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the seconds since the start, so a CI log shows where the time goes.
step() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }

step "Node packages for the test IdP and the browser test"
for dir in testing/idp testing/browser; do
  if [ -f "$dir/package-lock.json" ]; then
    [ -d "$dir/node_modules" ] || npm ci --prefix "$dir" --no-audit --no-fund
  fi
done

step "Python packages for the manifest checks"
if [ ! -x .venv-manifests/bin/python ]; then
  python3 -m venv .venv-manifests
fi
.venv-manifests/bin/pip install --quiet --disable-pip-version-check -r testing/manifests/requirements.txt

step "Build the component (what \`spin build\` runs)"
cargo build --target wasm32-wasip2 --release -p oidc-client

step "Build the test host"
cargo build -p spin-test-host

step "Kubernetes manifests: schemas and cross-checks"
.venv-manifests/bin/python testing/manifests/check.py
.venv-manifests/bin/python -m unittest discover -s testing/manifests

step "Rust tests: component, test host, fuzz targets (bounded), end-to-end"
cargo test --workspace --no-fail-fast

step "All tests passed"
