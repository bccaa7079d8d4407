#!/usr/bin/env bash
# Run tinyroute's benchmarks (what `make bench` calls): builds tinyroute-bench, generates the
# TinyLlama-shaped Q4_K_M model if it is missing, measures llama.cpp's prompt-processing rate, then
# classification latency against llama-server, concurrency, memory and start-up. Writes
# bench/results/*.json and prints markdown tables (also saved to bench/results/summary.md).
#
# Usage: bench/run.sh [latency|concurrency|memory|memory-serve|startup|gateway|analyze|conversations|cache-http|bus|shared-state|quality|cell-layout ...]
#        (default: all of them)
#
# Environment:
#   TINYROUTE_BENCH_BUILD  build tree (default: build/bench, RelWithDebInfo, tests off)
#   TINYROUTE_THREADS      threads for tinyroute, llama-server and llama-bench (default: 2)
#   TINYROUTE_BENCH_N      classification requests in the latency run (default: 200)
#   TINYROUTE_BENCH_N_INTERLEAVED  requests in the three-task interleaved run (default: 90)
#   TINYROUTE_BENCH_CLIENTS  concurrency levels (default: 1,4,16,64)
#   TINYROUTE_BENCH_STREAMS  concurrent streams in the gateway run (default: 1000)
#   TINYROUTE_BENCH_N_ANALYZE  requests in the analyze run (default: 100)
#   TINYROUTE_BENCH_CONVERSATIONS / TINYROUTE_BENCH_TURNS  the conversations run (default: 16 x 10)
#   TINYROUTE_BENCH_N_CACHE  requests in the cache-http run, each repeated 20 times (default: 50)
#   TINYROUTE_BENCH_CONTEXTS  internal_model.contexts for tinyroute's engines (default: the config's; 1 =
#                          one KV cache for every prefix, the layout before issue 19)
#   TINYROUTE_BENCH_FLASH_ATTN  1: internal_model.flash_attn on for tinyroute's engines (faster on long
#                          resident spans, not exact: README, flash_attn)
#   TINYROUTE_BENCH_MODEL  a GGUF to use instead of the generated TinyLlama-shaped one (smoke runs)
#   TINYROUTE_QUALITY_ARGS extra arguments for bench/quality/quality.py (e.g. "--tasks a,c --val-per-intent 1")
#
# `quality` runs on the real model (Gemma 3 270M, scripts/fetch-model.sh) and its peers in a venv of their
# own (scripts/python-env.sh --bench), never on the generated one.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
data="${TINYROUTE_CLINC150:-$repo/../shared/data/clinc150}"
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || modes=(latency concurrency memory memory-serve startup gateway analyze conversations cache-http bus shared-state quality cell-layout)

bench_build tinyroute-bench tinyroute-mkmodel tinyroute-cli tinyroute-cell-layout
bench="$build/bench/tinyroute-bench"
tinyroute_bin="$(find "$build/src" -maxdepth 3 -type f -name tinyroute -perm -u+x | head -n1)"

model="${TINYROUTE_BENCH_MODEL:-}"
[[ -n "$model" ]] || model="$(TINYROUTE_BUILD_DIR="$build" "$repo/scripts/make-bench-model.sh" | tail -n1)"
cache_var() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | grep -v -- '-NOTFOUND$' | head -n1; }
server="$(cache_var TINYROUTE_LLAMA_SERVER)"
llama_bench="$(cache_var TINYROUTE_LLAMA_BENCH)"
[[ -x "$server" && -x "$llama_bench" ]] || { log "llama-server / llama-bench not found in $build"; exit 1; }

mkdir -p "$results"
{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"commit\": \"$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo "  \"nproc\": $(nproc),"
  echo "  \"cpu\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -n1)\","
  echo "  \"flags\": \"$(lscpu | sed -n 's/^Flags: *//p' | head -n1)\","
  echo "  \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "  \"model\": \"$model\","
  echo "  \"model_bytes\": $(stat -c %s "$model"),"
  echo "  \"threads\": $threads"
  echo "}"
} >"$results/machine.json"

common=(--model "$model" --config "$repo/config/tinyroute.yaml" --threads "$threads"
  --data "$data/val.jsonl" --russian "$here/data/russian.jsonl" --out "$results")
[[ -z "${TINYROUTE_BENCH_CONTEXTS:-}" ]] || common+=(--contexts "$TINYROUTE_BENCH_CONTEXTS")
[[ -z "${TINYROUTE_BENCH_FLASH_ATTN:-}" ]] || common+=(--flash-attn "$TINYROUTE_BENCH_FLASH_ATTN")
summary="$results/summary.md"
: >"$summary"
for mode in "${modes[@]}"; do
  case "$mode" in
    latency)
      log "llama-bench: prompt-processing rate (the compute floor)"
      # Depth 0 (an empty cache, the floor as the issue defines it) and depth 1024 (after a cached prefix
      # about as long as the classify prefix: the attention over it is part of what decoding there costs).
      "$llama_bench" -m "$model" -t "$threads" -p 16,64,256 -d 0,1024 -n 0 -r 2 -o json \
        >"$results/llama-bench.json" 2>/dev/null
      log "latency: ${TINYROUTE_BENCH_N:-200} requests x (llama-server, choice, score), then 3 tasks interleaved"
      "$bench" latency "${common[@]}" --domains "$data/domains.json" --llama-server "$server" \
        --pp "$results/llama-bench.json" --n "${TINYROUTE_BENCH_N:-200}" \
        --n-interleaved "${TINYROUTE_BENCH_N_INTERLEAVED:-90}" | tee -a "$summary"
      ;;
    concurrency)
      log "concurrency: classify_task at ${TINYROUTE_BENCH_CLIENTS:-1,4,16,64} clients, generation at 1 and 16"
      "$bench" concurrency "${common[@]}" --clients "${TINYROUTE_BENCH_CLIENTS:-1,4,16,64}" | tee -a "$summary"
      ;;
    memory)
      log "memory: repacking with the file read (the default), without repacking (mapped), repacking with the file mapped"
      "$bench" memory "${common[@]}" | tee -a "$summary"
      "$bench" memory "${common[@]}" --repack 0 | tee -a "$summary"
      "$bench" memory "${common[@]}" --mmap 1 | tee -a "$summary"
      ;;
    analyze)
      log "analyze: ${TINYROUTE_BENCH_N_ANALYZE:-100} requests x (analyze, classify_task, separate calls, llama-server per decision)"
      "$bench" analyze "${common[@]}" --agents "$repo/config/agents-clinc150.yaml" --llama-server "$server" \
        --n "${TINYROUTE_BENCH_N_ANALYZE:-100}" |
        tee -a "$summary"
      ;;
    conversations)
      log "conversations: ${TINYROUTE_BENCH_CONVERSATIONS:-16} x ${TINYROUTE_BENCH_TURNS:-10} turns interleaved"
      "$bench" conversations "${common[@]}" --agents "$repo/config/agents-clinc150.yaml" --llama-server "$server" \
        --conversations "${TINYROUTE_BENCH_CONVERSATIONS:-16}" --turns "${TINYROUTE_BENCH_TURNS:-10}" |
        tee -a "$summary"
      ;;
    cache-http)
      log "cache-http: tinyroute serve, ${TINYROUTE_BENCH_N_CACHE:-50} requests x 20 repeats of POST /v1/route"
      "$bench" cache-http "${common[@]}" --tinyroute "$tinyroute_bin" --n "${TINYROUTE_BENCH_N_CACHE:-50}" |
        tee -a "$summary"
      ;;
    startup) "$bench" startup "${common[@]}" | tee -a "$summary" ;;
    memory-serve)
      log "memory-serve: RSS of tinyroute serve with the model, idle and under load"
      "$here/memory-serve.sh" "$build" "$model" "$results" | tee -a "$summary"
      ;;
    gateway)
      log "gateway: passthrough overhead against nginx proxy_pass, ${TINYROUTE_BENCH_STREAMS:-1000} concurrent streams"
      "$here/gateway.sh" "$build" "$results" | tee -a "$summary"
      ;;
    bus) TINYROUTE_BENCH_BUILD="$build" bash "$here/bus.sh" | tee -a "$summary" ;;
    shared-state)
      log "shared-state: the decision cache and conversations in Redis (two serve processes) vs in-process"
      TINYROUTE_BENCH_BUILD="$build" TINYROUTE_SHARED_MODEL="${TINYROUTE_SHARED_MODEL:-$model}" \
        bash "$here/shared-state.sh" | tee -a "$summary"
      ;;
    cell-layout)
      log "cell-layout: does a request's result follow which KV cells it occupies (generated and real model)"
      real="$("$repo/scripts/fetch-model.sh")"
      for m in "$model" "$real"; do
        echo "### $(basename "$m")"
        "$build/bench/tinyroute-cell-layout" --model "$m" --threads "$threads"
      done | tee "$results/cell-layout.md" | tee -a "$summary"
      ;;
    quality)
      log "quality: tinyroute's strategies and its peers on the real model, the same data, one run"
      real="$("$repo/scripts/fetch-model.sh")"
      bash "$repo/scripts/python-env.sh" --bench
      [[ -x "$repo/build/bench-venv/bin/python" ]] || { log "no build/bench-venv: the peers need PyPI"; exit 1; }
      # shellcheck disable=SC2086 # TINYROUTE_QUALITY_ARGS is a list of arguments
      "$repo/build/bench-venv/bin/python" "$here/quality/quality.py" --tinyroute "$tinyroute_bin" \
        --llama-server "$server" --model "$real" --data "$data" --threads "$threads" --out "$results" \
        ${TINYROUTE_QUALITY_ARGS:-} | tee -a "$summary"
      ;;
    *) log "unknown mode: $mode"; exit 2 ;;
  esac
done
log "results in $results"
