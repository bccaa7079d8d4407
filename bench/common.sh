# Sourced by the bench scripts (all in bench/): where things are, a tagged log line, and the bench build.
#   here, repo, build (TINYROUTE_BENCH_BUILD, default build/bench), threads (TINYROUTE_THREADS), results
#   log MESSAGE...        "[$bench_tag] MESSAGE" on stderr
#   bench_build TARGET... configures the build tree once, then builds the targets
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${TINYROUTE_BENCH_BUILD:-$repo/build/bench}"
threads="${TINYROUTE_THREADS:-2}"
results="$here/results"
bench_tag="bench"
log() { echo "[$bench_tag] $*" >&2; }

# RelWithDebInfo: llama.cpp (prebuilt, optimised) does the heavy lifting; -O2 -g keeps perf usable.
bench_build() {
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTINYROUTE_BUILD_TESTS=OFF >&2
  fi
  cmake --build "$build" --target "$@" -j "$threads" >&2
}
