#!/usr/bin/env bash
# Runs a Python test with the venv's interpreter (build/venv from scripts/python-env.sh), or says in one
# line why it cannot: exit 77 (ctest SKIP_RETURN_CODE) without a venv, exit 1 when CI=true.
#   venv-run.sh PYTHON ARGS...
python="$1"
shift
if [[ ! -x "$python" ]]; then
  echo "no build/venv ($python): run scripts/python-env.sh (needs PyPI)"
  [[ "${CI:-}" == "true" ]] && exit 1
  exit 77
fi
exec "$python" "$@"
