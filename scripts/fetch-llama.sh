#!/usr/bin/env bash
# Fetch the pinned llama.cpp source (shipped inside the npm package node-llama-cpp as a git
# bundle), build it once into a cache keyed by the pinned version, and install it there.
# A second run finds the install stamp and returns at once.
#
# Prints the install prefix on the last line of stdout (for CMAKE_PREFIX_PATH).
#
# Environment:
#   TINYROUTE_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/tinyroute)
#   TINYROUTE_JOBS    parallel build jobs (default: nproc)
#   GGML_CUDA / GGML_METAL   passed through to llama.cpp's CMake when set (ON/OFF)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/llama-pin.env
source "$here/llama-pin.env"

cache="${TINYROUTE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tinyroute}"
root="$cache/llama.cpp-$LLAMA_NPM_VERSION"
src="$root/src"
build="$root/build"
prefix="$root/install"
stamp="$prefix/.tinyroute-build-ok"
jobs="${TINYROUTE_JOBS:-$(nproc 2>/dev/null || echo 2)}"

log() { echo "[fetch-llama] $*" >&2; }

if [[ -f "$stamp" ]]; then
  log "cached build found: $prefix (skipping)"
  echo "$prefix"
  exit 0
fi

mkdir -p "$root"

# One build at a time: several configures (worktrees, a test run, CI steps) may call this at once, and
# two ninja runs in one build directory corrupt it. The others wait, then find the stamp.
exec 9>"$root/.lock"
if ! flock -n 9; then
  log "another build of llama.cpp is running in $root; waiting for it"
  flock 9
fi
if [[ -f "$stamp" ]]; then
  log "cached build found: $prefix (built while waiting)"
  echo "$prefix"
  exit 0
fi

if [[ ! -f "$src/CMakeLists.txt" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "npm pack node-llama-cpp@$LLAMA_NPM_VERSION"
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$LLAMA_NPM_VERSION" >/dev/null)
  tgz="$tmp/node-llama-cpp-$LLAMA_NPM_VERSION.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [[ "$got" != "$LLAMA_NPM_INTEGRITY" ]]; then
    log "integrity mismatch for node-llama-cpp@$LLAMA_NPM_VERSION"
    log "  expected $LLAMA_NPM_INTEGRITY"
    log "  got      $got"
    exit 1
  fi
  log "integrity ok ($LLAMA_NPM_INTEGRITY)"
  tar -xzf "$tgz" -C "$tmp" package/llama/gitRelease.bundle
  rm -rf "$src"
  git clone --quiet "$tmp/package/llama/gitRelease.bundle" "$src"
  head="$(git -C "$src" rev-parse HEAD)"
  if [[ "$head" != "$LLAMA_BUNDLE_COMMIT" ]]; then
    log "bundle HEAD $head differs from pinned $LLAMA_BUNDLE_COMMIT"
    exit 1
  fi
fi

extra=()
[[ -n "${GGML_CUDA:-}" ]] && extra+=("-DGGML_CUDA=$GGML_CUDA")
[[ -n "${GGML_METAL:-}" ]] && extra+=("-DGGML_METAL=$GGML_METAL")

log "configuring llama.cpp in $build"
cmake -S "$src" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_TOOLS_INSTALL=OFF \
  "${extra[@]}" >&2

log "building llama, llama-server, llama-quantize, llama-bench with $jobs jobs (about 5 minutes on 2 cores)"
cmake --build "$build" -j "$jobs" --target llama llama-server llama-quantize llama-bench >&2
cmake --install "$build" >&2
mkdir -p "$prefix/bin" "$prefix/share/tinyroute"
for t in llama-server llama-quantize llama-bench; do
  cp -f "$build/bin/$t" "$prefix/bin/$t"
done
cp -f "$src/models/ggml-vocab-llama-spm.gguf" "$prefix/share/tinyroute/"
echo "$LLAMA_NPM_VERSION $LLAMA_BUNDLE_COMMIT" >"$stamp"
log "installed into $prefix"
echo "$prefix"
