#!/usr/bin/env bash
# Installs what tinyroute needs on Debian 12 (bookworm). Run as root (or with sudo available).
set -euo pipefail
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# shellcheck disable=SC2046
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends $(grep -v '^#' "$(dirname "$0")/../.ci/apt-packages.txt")
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi
