#!/usr/bin/env bash
# Gateway benchmarks (issue 6, part 3), called by bench/run.sh as mode `gateway`:
#  1. overhead: passthrough of a named model (no classification) to a fast local backend (nginx
#     answering a fixed chat completion), wrk against the backend directly, through nginx proxy_pass
#     (HTTP/1.1 upstream keep-alive: its strongest setup) and through `tinyroute serve`; added p50/p99 at
#     1 connection and maximum requests/s at 64 connections, rounds interleaved;
#  2. 1,000 concurrent streaming connections through tinyroute (and through nginx) to a slow SSE
#     backend (bench/gateway/stream-backend.mjs): all held open at once, RSS and fds while held.
# Usage: bench/gateway.sh BUILD_DIR RESULTS_DIR
# Environment: TINYROUTE_BENCH_GW_SECONDS (per wrk run, default 5), TINYROUTE_BENCH_GW_ROUNDS (3),
#              TINYROUTE_BENCH_STREAMS (1000), TINYROUTE_THREADS (2: tinyroute network threads, nginx workers)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=gateway/common.sh
source "$here/gateway/common.sh" # free_port, $answer, nginx_conf
build="$(cd "$1" && pwd)"
results="$2"
secs="${TINYROUTE_BENCH_GW_SECONDS:-5}"
rounds="${TINYROUTE_BENCH_GW_ROUNDS:-3}"
streams="${TINYROUTE_BENCH_STREAMS:-1000}"
threads="${TINYROUTE_THREADS:-2}"
log() { echo "[bench gateway] $*" >&2; }

nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
for tool in "$nginx_bin" wrk node python3; do
  command -v "$tool" >/dev/null || { log "$tool is required (make deps)"; exit 1; }
done
tinyroute="$build/src/cli/tinyroute"
mkmodel="$build/tools/mkmodel/tinyroute-mkmodel"
cache_var() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | grep -v -- '-NOTFOUND$' | grep . | head -n1; }
vocab="$(cache_var TINYROUTE_VOCAB_GGUF || true)"
[[ -n $vocab ]] || vocab="$(cache_var TINYROUTE_VOCAB_GGUF_FOUND || true)"
[[ -x $tinyroute && -x $mkmodel && -f $vocab ]] || { log "build tinyroute and tinyroute-mkmodel in $build first"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tinyroute-bench-gw.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # PORT PID
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { log "process $2 died; logs in $work"; tail -n 20 "$work"/*.log >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  log "nothing listens on $1"
  exit 1
}
ulimit -n "$(ulimit -Hn)" # 1,000 streams need 2,000+ descriptors in the proxy

# ---- the fast backend: nginx answering a fixed chat completion --------------------------------------
backend_port=$(free_port)
nginx_conf backend "$backend_port" 1 "default_type text/event-stream; return 200 '$answer';" ""
"$nginx_bin" -c "$work/backend/nginx.conf" -p "$work/backend" >"$work/backend.log" 2>&1 &
pids+=($!)
wait_port "$backend_port" "${pids[-1]}"

stream_port=$(free_port)
node "$here/gateway/stream-backend.mjs" "$stream_port" 500 20 >"$work/stream-backend.log" 2>&1 &
pids+=($!)
wait_port "$stream_port" "${pids[-1]}"

# ---- nginx as the proxy peer --------------------------------------------------------------------------
proxy_port=$(free_port)
nginx_conf proxy "$proxy_port" "$threads" \
  "proxy_pass http://bench_backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off;" \
  "upstream bench_backend { server 127.0.0.1:$backend_port; keepalive 64; }
  upstream bench_stream { server 127.0.0.1:$stream_port; keepalive 64; }
  server { listen 127.0.0.1:PROXY_STREAM_PORT; location / { proxy_pass http://bench_stream; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } }"
proxy_stream_port=$(free_port)
sed -i "s/PROXY_STREAM_PORT/$proxy_stream_port/" "$work/proxy/nginx.conf"
"$nginx_bin" -c "$work/proxy/nginx.conf" -p "$work/proxy" >"$work/proxy.log" 2>&1 &
nginx_proxy_pid=$!
pids+=($nginx_proxy_pid)
wait_port "$proxy_port" "$nginx_proxy_pid"

# ---- tinyroute serve: named models pass straight through ---------------------------------------------
if [[ ! -s $build/bench-models/internal-tiny.gguf ]]; then
  mkdir -p "$build/bench-models"
  "$mkmodel" --vocab "$vocab" --out "$build/bench-models/internal-tiny.gguf.tmp" --preset tiny --seed 1 >/dev/null
  mv "$build/bench-models/internal-tiny.gguf.tmp" "$build/bench-models/internal-tiny.gguf"
fi
cat >"$work/tinyroute.yaml" <<YAML
internal_model:
  model: $build/bench-models/internal-tiny.gguf
  threads: 1
  context: 1024
categories:
  - name: chat
    description: Everyday questions.
  - name: other
    description: Anything else.
models:
  - name: bench-upstream
    provider: openai
    base_url: http://127.0.0.1:$backend_port
    categories: [chat, other]
  - name: bench-stream
    provider: openai
    base_url: http://127.0.0.1:$stream_port
    categories: [chat, other]
default_category: chat
YAML
tr_port=$(free_port)
"$tinyroute" serve --config "$work/tinyroute.yaml" --host 127.0.0.1 --port "$tr_port" --threads "$threads" \
  >"$work/tinyroute.log" 2>&1 &
tr_pid=$!
pids+=($tr_pid)
for _ in $(seq 1 600); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$tr_port/health" || true) == 200 ]] && break
  kill -0 "$tr_pid" 2>/dev/null || { log "tinyroute serve died"; tail -n 30 "$work/tinyroute.log" >&2; exit 1; }
  sleep 0.1
done

for target in "direct:$backend_port" "nginx:$proxy_port" "tinyroute:$tr_port"; do
  code=$(curl -s -o "$work/check.json" -w '%{http_code}' -H 'content-type: application/json' \
    -d '{"model":"bench-upstream","messages":[{"role":"user","content":"ping"}]}' \
    "http://127.0.0.1:${target#*:}/v1/chat/completions")
  [[ $code == 200 ]] || { log "${target%%:*} answered $code: $(head -c 300 "$work/check.json")"; exit 1; }
done

# ---- 1. overhead: wrk, rounds interleaved ---------------------------------------------------------------
rows="$work/wrk.jsonl"
: >"$rows"
for round in $(seq 1 "$rounds"); do
  for conns in 1 64; do
    for target in "direct:$backend_port" "nginx:$proxy_port" "tinyroute:$tr_port"; do
      name=${target%%:*} port=${target#*:}
      log "round $round: $name, $conns connections, ${secs}s"
      out=$(BENCH_MODEL=bench-upstream wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$here/gateway/report.lua" \
        "http://127.0.0.1:$port/v1/chat/completions" | tail -n1)
      echo "{\"target\":\"$name\",\"connections\":$conns,\"round\":$round,\"wrk\":$out}" >>"$rows"
    done
  done
done

# ---- 2. 1,000 concurrent streams ------------------------------------------------------------------------
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
nginx_sum() { # FUNCTION: summed over the master and its workers
  local total=0 p
  for p in $nginx_proxy_pid $(pgrep -P "$nginx_proxy_pid"); do total=$((total + $($1 "$p"))); done
  echo "$total"
}
nginx_rss_kib() { nginx_sum rss_kib; }
nginx_fds() { nginx_sum fds; }
streams_jsonl="$work/streams.jsonl"
: >"$streams_jsonl"
hold() { # NAME URL MODEL RSS-FUNCTION FDS-FUNCTION PID
  local name=$1 url=$2 model=$3 rssf=$4 fdsf=$5 pid=$6 idle held nfds out
  idle=$($rssf "$pid")
  out="$work/streams-$name.log"
  node "$here/gateway/streams.mjs" "$url" "$model" "$streams" 120 >"$out" 2>&1 &
  local client=$!
  held=""
  for _ in $(seq 1 1200); do
    if grep -q '"all_open"' "$out"; then
      held=$($rssf "$pid")
      nfds=$($fdsf "$pid")
      break
    fi
    kill -0 "$client" 2>/dev/null || break
    sleep 0.1
  done
  wait "$client" || true
  echo "{\"target\":\"$name\",\"idle_rss_kib\":$idle,\"held_rss_kib\":${held:-null},\"fds_while_held\":${nfds:-null},\"client\":$(tail -n1 "$out")}" >>"$streams_jsonl"
}
log "$streams concurrent streams through tinyroute"
hold tinyroute "http://127.0.0.1:$tr_port" bench-stream rss_kib fds "$tr_pid"
log "$streams concurrent streams through nginx"
hold nginx "http://127.0.0.1:$proxy_stream_port" bench-stream nginx_rss_kib nginx_fds "$nginx_proxy_pid"

python3 "$here/gateway/report.py" "$rows" "$streams_jsonl" "$results/gateway.json" "$threads" "$secs" "$rounds"
