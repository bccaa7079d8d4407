#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR for SECONDS each (`make fuzz`). Each target starts
# from its checked-in seeds (tests/fuzz/corpus/<name>) and grows a working corpus in
# BUILD_DIR/corpus/<name> (never committed). A crash leaves its input in BUILD_DIR/findings/; add it to
# the seeds with a fix, so the replay tests keep it fixed. Exit 1 when any target found something.
set -uo pipefail
build="${1:?usage: fuzz.sh BUILD_DIR SECONDS [target...]}"
seconds="${2:?usage: fuzz.sh BUILD_DIR SECONDS [target...]}"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in "$root"/tests/fuzz/fuzz-*.cpp; do
    n="$(basename "$f" .cpp)"
    targets+=("${n#fuzz-}")
  done
fi
mkdir -p "$build/findings"
failed=()
for name in "${targets[@]}"; do
  exe="$build/tests/fuzz/fuzz-$name"
  [[ -x "$exe" ]] || { echo "[fuzz] $name: not built ($exe)" >&2; failed+=("$name"); continue; }
  mkdir -p "$build/corpus/$name"
  echo "[fuzz] $name for ${seconds}s"
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$name-" "$build/corpus/$name" "$root/tests/fuzz/corpus/$name" \
    >"$build/findings/$name.log" 2>&1; then
    echo "[fuzz] $name: FOUND something; see $build/findings/$name.log and $build/findings/$name-*" >&2
    failed+=("$name")
  else
    grep -E "^Done [0-9]+ runs" "$build/findings/$name.log" | sed "s/^/[fuzz] $name: /"
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "[fuzz] findings or failures in: ${failed[*]}" >&2
  exit 1
fi
echo "[fuzz] no findings in ${#targets[@]} targets"
