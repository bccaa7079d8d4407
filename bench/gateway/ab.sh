#!/usr/bin/env bash
# Before/after for the gateway's passthrough cost: two `tinyroute` binaries (e.g. one built from the
# commit before a change, one from after) and nginx proxy_pass side by side, in front of the same fast
# nginx backend as bench/gateway.sh. wrk -c64 rounds are interleaved (nginx, A, B, nginx, ...); each
# line gives requests/s and the proxy's CPU time per request (utime + stime of all its threads, from
# /proc), which is steadier than requests/s on a shared machine.
# Usage: bench/gateway/ab.sh TINYROUTE_A TINYROUTE_B [ROUNDS] [SECONDS]
# Build A, for instance: git worktree add /tmp/before HEAD~1 && cmake -S /tmp/before -B /tmp/before/b \
#   -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTINYROUTE_BUILD_TESTS=OFF && ninja -C /tmp/before/b tinyroute-cli
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh" # free_port, $answer, nginx_conf
a="$(realpath "$1")" b="$(realpath "$2")" rounds="${3:-3}" secs="${4:-5}"
threads="${TINYROUTE_THREADS:-2}"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tinyroute-ab.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
up() {
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "ab.sh: nothing listens on $1; logs:" >&2
  tail -n 5 "$work"/*.log >&2
  exit 1
}

nginx_run() { # NAME PORT WORKERS LOCATION HTTP-EXTRA: write the config and start it
  nginx_conf "$@"
  "$nginx_bin" -c "$work/$1/nginx.conf" -p "$work/$1" >"$work/$1.log" 2>&1 &
  pids+=($!)
  up "$2"
}
backend=$(free_port) proxy=$(free_port) port_a=$(free_port) port_b=$(free_port)
nginx_run backend "$backend" 1 "default_type text/event-stream; return 200 '$answer';" ""
nginx_run proxy "$proxy" "$threads" \
  "proxy_pass http://bb; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off;" \
  "upstream bb { server 127.0.0.1:$backend; keepalive 64; }"
proxy_pid=${pids[-1]}

# The internal model is never used by a named-model passthrough; the config only needs a valid file.
model="${TINYROUTE_BUILD_DIR:-$here/../../build/bench}/bench-models/internal-tiny.gguf"
[[ -f $model ]] || { echo "ab.sh: no $model: run bench/run.sh gateway once first (or set TINYROUTE_BUILD_DIR)" >&2; exit 1; }
cat >"$work/t.yaml" <<YAML
internal_model: {model: $model, threads: 1, context: 1024}
categories: [{name: chat, description: Everyday questions.}, {name: other, description: Anything else.}]
models: [{name: bench-upstream, provider: openai, base_url: "http://127.0.0.1:$backend", categories: [chat, other]}]
default_category: chat
YAML
"$a" serve --config "$work/t.yaml" --host 127.0.0.1 --port "$port_a" --threads "$threads" >"$work/a.log" 2>&1 &
pid_a=$!
pids+=($pid_a)
"$b" serve --config "$work/t.yaml" --host 127.0.0.1 --port "$port_b" --threads "$threads" >"$work/b.log" 2>&1 &
pid_b=$!
pids+=($pid_b)
up "$port_a"
up "$port_b"

ticks() { # total CPU ticks of the given processes' threads
  local t=0 p f
  for p in "$@"; do for f in /proc/"$p"/task/*/stat; do
    read -r -a s <"$f"
    t=$((t + s[13] + s[14]))
  done; done
  echo "$t"
}
measure() { # NAME PORT PIDS...
  local name=$1 p=$2
  shift 2
  local t0 out t1
  t0=$(ticks "$@")
  out=$(BENCH_MODEL=bench-upstream wrk -t1 -c64 -d"${secs}s" -s "$here/report.lua" "http://127.0.0.1:$p/v1/chat/completions" | tail -n1)
  t1=$(ticks "$@")
  python3 -c "import json,sys; w=json.loads(sys.argv[1]); n=w['requests']; d=w['duration_us']/1e6
print(f'{sys.argv[2]:8s} {n/d:8.0f} req/s  {($t1-$t0)/$(getconf CLK_TCK)*1e6/n:6.1f} us CPU/request  non2xx {w[\"non2xx\"]}')" "$out" "$name"
}
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  measure nginx "$proxy" $(pgrep -P "$proxy_pid")
  measure A "$port_a" "$pid_a"
  measure B "$port_b" "$pid_b"
done
