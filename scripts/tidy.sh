#!/usr/bin/env bash
# clang-tidy over tinyroute's own translation units (src/**/*.cpp) with the checks in .clang-tidy, using
# BUILD_DIR/compile_commands.json (CMake exports it; configuring is enough, nothing needs building). One
# clang-tidy per file, nproc in parallel. Any finding in tinyroute's code or headers fails the run.
#   scripts/tidy.sh [BUILD_DIR]   default build/debug (`cmake --preset debug`)
#   TIDY_JOBS=N                   parallel clang-tidy processes (default: nproc)
# The compile commands are GCC's: -Wno-unknown-warning-option lets clang skip GCC-only warning flags
# (-Wno-restrict, -Wno-mismatched-new-delete) instead of failing on them under -Werror.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build/debug}" && pwd)"
if [[ ! -f $build/compile_commands.json ]]; then
  echo "tidy: $build/compile_commands.json is missing; configure first (cmake --preset debug)" >&2
  exit 2
fi
tidy="$(command -v clang-tidy-14 || command -v clang-tidy || true)"
if [[ -z $tidy ]]; then
  echo "tidy: clang-tidy is not installed (it is in .ci/apt-packages.txt: make deps)" >&2
  exit 2
fi
jobs="${TIDY_JOBS:-$(nproc)}"

# The project's own translation units that this build compiles (not llama.cpp, tests, tools or bench).
mapfile -t files < <(python3 - "$build/compile_commands.json" "$root/src/" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))
print("\n".join(sorted({e["file"] for e in entries if e["file"].startswith(sys.argv[2]) and e["file"].endswith(".cpp")})))
PY
)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "tidy: no src/ translation units in $build/compile_commands.json" >&2
  exit 2
fi

echo "== clang-tidy ($("$tidy" --version | grep -o 'version [0-9.]*')) on ${#files[@]} files, $jobs in parallel"
start=$(date +%s)
# Each file's output is printed in one piece when it finishes; xargs exits non-zero if any run failed.
status=0
printf '%s\0' "${files[@]}" |
  xargs -0 -n 1 -P "$jobs" bash -c '
    out=$("$0" -p "$1" --quiet --extra-arg=-Wno-unknown-warning-option "$3" 2>&1) && rc=0 || rc=$?
    out=$(grep -v -e "^[0-9]* warnings\? generated\.$" -e "^Suppressed [0-9]* warnings" \
      -e "^Use -header-filter=" -e "^[0-9]* warnings\? treated as errors\?\.$" <<<"$out" || true)
    if [[ $rc -ne 0 || -n $out ]]; then printf "== %s\n%s\n" "${3#"$2"/}" "$out"; fi
    [[ $rc -eq 0 && -z $out ]]' "$tidy" "$build" "$root" || status=$?
echo "== clang-tidy done in $(($(date +%s) - start))s: $([[ $status -eq 0 ]] && echo clean || echo FINDINGS)"
exit "$status"
