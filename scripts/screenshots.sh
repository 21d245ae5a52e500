#!/usr/bin/env bash
# Retakes the README's screenshots of / and /user (docs/screenshots/) with
# headless Chromium: runs the end-to-end test of scripts/dev.sh, which logs in
# with a real browser at the app dev.sh serves and saves both pages, then
# copies them. Needs what scripts/test.sh needs (see the README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --target wasm32-wasip2 --release -p oidc-client
cargo build --quiet -p spin-test-host
[ -d testing/browser/node_modules/playwright-core ] || npm ci --prefix testing/browser --no-audit --no-fund
[ -d testing/idp/node_modules/oidc-provider ] || npm ci --prefix testing/idp --no-audit --no-fund
cargo test --quiet -p e2e --test dev_script -- dev_script_serves_a_working_login
mkdir -p docs/screenshots
for page in home user; do
  cp "target/e2e-artifacts/dev/$page.png" "docs/screenshots/$page.png"
done
echo "docs/screenshots/home.png and user.png updated"
