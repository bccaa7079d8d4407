#!/usr/bin/env bash
# classify-only.sh BIN MKMODEL VOCAB: the classify-only program decides on a generated model, and its
# dynamic libraries hold none of the layers above route (hiredis: bus, libcurl: store, libssl: gateway).
set -euo pipefail
bin=$1 mkmodel=$2 vocab=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$mkmodel" --vocab "$vocab" --out "$dir/tiny.gguf" --preset tiny --seed 1 >/dev/null
"$bin" "$dir/tiny.gguf"
libs=$(ldd "$bin")
grep -q "libcrypto" <<<"$libs" || { echo "ldd shows no libcrypto (the core's sha256): is this ldd output?"; echo "$libs"; exit 1; }
for lib in libhiredis libcurl libssl; do
  if grep -q "$lib" <<<"$libs"; then
    echo "classify-only links $lib:"
    echo "$libs"
    exit 1
  fi
done
echo "links neither hiredis, libcurl nor libssl"
