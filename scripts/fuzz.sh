#!/usr/bin/env bash
# Coverage-guided fuzzing of the component's parsers with libFuzzer (cargo fuzz),
# on stable Rust. The same targets run, without coverage feedback, in the
# README's one test command (cargo test -p fuzz); this goes further.
#
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
#
# Targets are the folders of testing/fuzz/seeds/ (default: all). The corpus grows
# in target/fuzz-corpus/<target>/; an input that panics is saved in
# target/fuzz-findings/<target>/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds per target] [target ...]" >&2; exit 2; }
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(ls testing/fuzz/seeds); fi
for t in "${targets[@]}"; do
  [ -d "testing/fuzz/seeds/$t" ] || { echo "unknown target $t (see testing/fuzz/seeds/)" >&2; exit 2; }
done

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Sanitizer coverage does not link with the release profile's LTO.
export CARGO_PROFILE_RELEASE_LTO=false

summary=()
for t in "${targets[@]}"; do
  corpus="target/fuzz-corpus/$t"
  findings="target/fuzz-findings/$t"
  mkdir -p "$corpus" "$findings"
  log="target/fuzz-$t.log"
  echo "==> $t for ${seconds}s"
  status=0
  cargo fuzz run -s none --fuzz-dir testing/fuzz "$t" --features libfuzzer \
    "$corpus" "testing/fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$findings/" >"$log" 2>&1 || status=$?
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    summary+=("$t: FAILED (exit $status), see $log and $findings/")
  else
    summary+=("$t: $runs runs, coverage $cov edges, corpus $(ls "$corpus" | wc -l) inputs, no panic")
  fi
done

echo; printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAILED
