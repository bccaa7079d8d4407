#!/usr/bin/env bash
# Generate the benchmark model: TinyLlama-1.1B-shaped (22 layers, n_embd 2048, 32000-token Llama
# SPM vocabulary), seeded random weights, quantized to Q4_K_M (~640 MiB). Built once into the cache;
# a second run finds it and returns at once.
#
# Prints the model path on the last line of stdout.
#
# Usage: scripts/make-bench-model.sh [--mkmodel PATH] [--llama-quantize PATH] [--vocab PATH]
#
# Environment (the options win):
#   TINYROUTE_MKMODEL         tinyroute-mkmodel binary (default: build it in $TINYROUTE_BUILD_DIR)
#   TINYROUTE_LLAMA_QUANTIZE  llama-quantize binary (default: from the build's CMake cache, then the
#                             cached llama.cpp install, then PATH)
#   TINYROUTE_VOCAB_GGUF      vocabulary GGUF (default: from the build's CMake cache, then the
#                             cached llama.cpp install)
#   TINYROUTE_BUILD_DIR       build tree for tinyroute-mkmodel (default: build/release)
#   TINYROUTE_CACHE           cache root (default: ${XDG_CACHE_HOME:-~/.cache}/tinyroute)
#   TINYROUTE_JOBS            build jobs and generation/quantization threads (default: 2)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=scripts/llama-pin.env
source "$here/llama-pin.env"

log() { echo "[make-bench-model] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

mkmodel="${TINYROUTE_MKMODEL:-}"
quantize="${TINYROUTE_LLAMA_QUANTIZE:-}"
vocab="${TINYROUTE_VOCAB_GGUF:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mkmodel) mkmodel="${2:?--mkmodel needs a path}"; shift 2 ;;
    --llama-quantize) quantize="${2:?--llama-quantize needs a path}"; shift 2 ;;
    --vocab) vocab="${2:?--vocab needs a path}"; shift 2 ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

cache="${TINYROUTE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tinyroute}"
out="$cache/models/tinyllama-shape-q4_k_m.gguf"
jobs="${TINYROUTE_JOBS:-2}"
build="${TINYROUTE_BUILD_DIR:-$repo/build/release}"
llama_prefix="$cache/llama.cpp-$LLAMA_NPM_VERSION/install"

if [[ -f "$out" ]]; then
  log "cached model found (skipping)"
  echo "$out"
  exit 0
fi

cache_var() { # cache_var NAME: a value from the build tree's CMake cache, if any
  [[ -f "$build/CMakeCache.txt" ]] || return 0
  sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | grep -v -- '-NOTFOUND$' | head -n1
}

if [[ -z "$mkmodel" ]]; then
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    log "configuring $build"
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTINYROUTE_BUILD_TESTS=OFF >&2
  fi
  log "building tinyroute-mkmodel"
  cmake --build "$build" --target tinyroute-mkmodel -j "$jobs" >&2
  mkmodel="$build/tools/mkmodel/tinyroute-mkmodel"
fi
if [[ -z "$quantize" ]]; then quantize="$(cache_var TINYROUTE_LLAMA_QUANTIZE)"; fi
if [[ -z "$quantize" && -x "$llama_prefix/bin/llama-quantize" ]]; then quantize="$llama_prefix/bin/llama-quantize"; fi
if [[ -z "$quantize" ]]; then quantize="$(command -v llama-quantize || true)"; fi
if [[ -z "$vocab" ]]; then vocab="$(cache_var TINYROUTE_VOCAB_GGUF)"; fi
if [[ -z "$vocab" ]]; then vocab="$(cache_var TINYROUTE_VOCAB_GGUF_FOUND)"; fi
if [[ -z "$vocab" && -f "$llama_prefix/share/tinyroute/ggml-vocab-llama-spm.gguf" ]]; then
  vocab="$llama_prefix/share/tinyroute/ggml-vocab-llama-spm.gguf"
fi

[[ -x "$mkmodel" ]] || die "tinyroute-mkmodel not found or not executable: '${mkmodel}'"
[[ -x "$quantize" ]] || die "llama-quantize not found; pass --llama-quantize or set TINYROUTE_LLAMA_QUANTIZE"
[[ -f "$vocab" ]] || die "vocabulary GGUF not found; pass --vocab or set TINYROUTE_VOCAB_GGUF"

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp" "$tmp".f16.tmp' EXIT
log "generating $out (f16 ~2.2 GB temporary, then Q4_K_M; a few minutes)"
"$mkmodel" --vocab "$vocab" --out "$tmp" --preset tinyllama-shape --seed 1 \
  --quantize Q4_K_M --llama-quantize "$quantize" --threads "$jobs" >&2
mv -f "$tmp" "$out"
log "done: $(du -h "$out" | cut -f1)"
echo "$out"
