#!/usr/bin/env bash
# The Python test environment: a virtual environment in the build tree (build/venv) with the pinned,
# hash-checked requirements of clients/python/requirements/test.txt (the official openai, anthropic and
# ollama SDKs, redis-py, pytest, build) and the client installed in editable mode.
# With --bench: the quality benchmark's peers instead (bench/quality/requirements.txt: sentence-
# transformers and all-MiniLM-L6-v2, scikit-learn; several GiB with torch) in build/bench-venv.
#
#   scripts/python-env.sh [--bench] [VENV]      VENV defaults to build/venv (build/bench-venv)
#
# A no-op when the venv matches the lock file. Offline (PyPI unreachable), it prints one line and exits
# 0 without a venv: the Python tests then skip, each saying why. CI=true makes that an error instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench=false
[[ "${1:-}" == "--bench" ]] && { bench=true; shift; }
if $bench; then
  venv="${1:-$root/build/bench-venv}"
  lock="$root/bench/quality/requirements.txt"
else
  venv="${1:-$root/build/venv}"
  lock="$root/clients/python/requirements/test.txt"
fi
stamp="$venv/.tinyroute-lock.sha256"
want="$(cat "$lock" "$root/clients/python/pyproject.toml" | sha256sum | cut -d' ' -f1)"
[[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]] && exit 0

python=/usr/bin/python3
[[ -x "$python" ]] || python="$(command -v python3)"
fail() {
  echo "[python-env] $1" >&2
  rm -rf "$venv"
  [[ "${CI:-}" == "true" ]] && exit 1
  exit 0
}
rm -rf "$venv"
"$python" -m venv "$venv" 2>/dev/null || fail "no venv module in $python (apt-get install python3-venv): Python tests will be skipped"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
if ! "${pip[@]}" install --require-hashes --only-binary=:all: -r "$lock" 2>"$venv.log"; then
  reason=$(grep -m1 -E 'Could not|Network|Failed|ERROR' "$venv.log" || tail -n1 "$venv.log")
  rm -f "$venv.log"
  fail "could not install ${lock#"$root"/} from PyPI (${reason:-unknown}): $($bench && echo "the quality benchmark's peers cannot run" || echo "Python tests will be skipped")"
fi
rm -f "$venv.log"
# The client itself, editable, with nothing new: every dependency is already in the lock.
$bench || "${pip[@]}" install --no-deps --no-build-isolation -e "$root/clients/python"
echo "$want" >"$stamp"
echo "[python-env] $venv ready ($(grep -c '^[a-z]' "$lock") pinned packages)"
