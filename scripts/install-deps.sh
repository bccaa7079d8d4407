#!/usr/bin/env bash
# Installs what tinyroute needs on Debian 12 (bookworm): .ci/apt-packages.txt, plus node/npm if absent.
#   --if-missing   do nothing when every package is already installed (used by `make demo` / `make test`)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mapfile -t packages < <(grep -v -e '^#' -e '^$' "$here/../.ci/apt-packages.txt")

if [[ "${1:-}" == "--if-missing" ]]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]] && command -v node >/dev/null && command -v npm >/dev/null; then exit 0; fi
  echo "[deps] missing: ${missing[*]:-node/npm}" >&2
fi

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi
