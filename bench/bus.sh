#!/usr/bin/env bash
# The message bus benchmark (`bench/run.sh bus`, part of `make bench`): messages per second end to
# end and delivery latency p50/p95, for pure forwarding (bus.mode forward, no model) and for routing
# with the TinyLlama-shaped model (bus.mode model: one analyze pass per message, envelope fields from
# it and from rules; no generation unless bus.generate asks). Each scenario gets a fresh redis-server
# on a free port and one `tinyroute bus` process. Model scenarios also report the engine tokens
# decoded per message (from the dispatcher's exit log) and, once, llama-bench's prompt-processing
# rate on the same model: the compute floor is that rate ÷ tokens per message. Prints a markdown
# table and writes bench/results/bus.json.
#
# Environment:
#   TINYROUTE_BENCH_BUILD      build tree (default: build/bench)
#   TINYROUTE_THREADS          internal-model threads (default: 2)
#   TINYROUTE_BUS_N_FORWARD    messages in the forwarding backlog (default: 20000)
#   TINYROUTE_BUS_N_MODEL      messages in the routed backlog (default: 200)
#   TINYROUTE_BUS_MODEL_PACED  "COUNT RATE" of the paced routed run (default: "50 2")
#   TINYROUTE_BUS_SPLIT_PACED  "COUNT RATE" of the paced run with summaries for one agent (default: the
#                              paced run's); its messages are addressed, every third to that agent
#   TINYROUTE_BUS_MODEL        model for the routed runs (default: the TinyLlama-shaped bench model)
#   TINYROUTE_BUS_SCENARIOS    which runs (default: "forward model split")
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_tag="bench:bus"
bench_build tinyroute-cli tinyroute-mkmodel
cli="$build/src/cli/tinyroute"
scenarios="${TINYROUTE_BUS_SCENARIOS:-forward model split}"
model="${TINYROUTE_BUS_MODEL:-}"
if [[ -z "$model" && ( "$scenarios" == *model* || "$scenarios" == *split* ) ]]; then
  model="$(TINYROUTE_BUILD_DIR="$build" "$repo/scripts/make-bench-model.sh" | tail -n1)"
fi
work="$(mktemp -d)"
redis_pid=""
bus_pid=""
cleanup() {
  [[ -n "$bus_pid" ]] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null
  [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The agents of config/agents-clinc150.yaml (its routing prompt is the realistic size) plus a bus section.
agents="$(sed -n 's/^  - name: //p' <(sed -n '/^agents:/,$p' "$repo/config/agents-clinc150.yaml") | paste -sd, -)"

# The first agent gets the summaries in the split run.
split_agent="${agents%%,*}"

scenario() { # label mode count rate [bus-load flags] [lines for the bus section]
  local label=$1 mode=$2 count=$3 rate=$4 extra=${5:-} bus_extra=${6:-}
  local port
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
  sed "s|^  model: .*|  model: ${model:-unused}\n  threads: $threads|" "$repo/config/agents-clinc150.yaml" \
    >"$work/bus.yaml"
  # analyze() needs at least two task categories; the agents config has one.
  sed -i -e 's|^categories:$|categories:\n  - name: coding\n    description: Writing or debugging code.|' \
    -e 's|categories: \[chat\]|categories: [chat, coding]|' "$work/bus.yaml"
  # The analyze prefix is decoded once and kept on disk for the next scenarios (start-up only).
  sed -i "s|^  threads: $threads|  threads: $threads\n  state_dir: $work/state|" "$work/bus.yaml"
  printf 'bus:\n  redis: redis://127.0.0.1:%s\n  mode: %s\n  batch: 64\n%b' "$port" "$mode" "$bus_extra" \
    >>"$work/bus.yaml"
  "$cli" bus --config "$work/bus.yaml" 2>"$work/bus-$label.log" &
  bus_pid=$!
  # The consumer group exists once the dispatcher is up (and, in model mode, its prefixes are decoded).
  until redis-cli -p "$port" xinfo groups stream:tinyroute:inbox 2>/dev/null | grep -q tinyroute; do
    kill -0 "$bus_pid" 2>/dev/null || { cat "$work/bus-$label.log" >&2; exit 1; }
    sleep 0.2
  done
  local row
  row="$(python3 "$here/bus-load.py" "$port" "$count" "$agents" --rate "$rate" $extra --label "$label")"
  kill "$bus_pid"; wait "$bus_pid" 2>/dev/null || true; bus_pid=""
  kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
  # "engine: R requests (G generate), T tokens decoded in D decodes, ..." (model mode only)
  python3 - "$row" "$work/bus-$label.log" "$count" <<'PY'
import json, re, sys
row = json.loads(sys.argv[1])
m = re.search(r"engine: (\d+) requests \((\d+) generate\), (\d+) tokens decoded in (\d+) decodes", open(sys.argv[2]).read())
if m:
    n = int(sys.argv[3])
    row.update(engine_requests=int(m[1]), generate_requests=int(m[2]), tokens_per_message=round(int(m[3]) / n, 1),
               decodes=int(m[4]))
print(json.dumps(row))
PY
}

mkdir -p "$results"
n_forward="${TINYROUTE_BUS_N_FORWARD:-20000}"
n_model="${TINYROUTE_BUS_N_MODEL:-200}"
{
  if [[ "$scenarios" == *forward* ]]; then
    log "forward: $n_forward addressed messages as a backlog, then 500 at 200/s"
    scenario forward-backlog forward "$n_forward" 0
    scenario forward-paced forward 500 200
  fi
  read -r paced_n paced_rate <<<"${TINYROUTE_BUS_MODEL_PACED:-50 2}"
  if [[ "$scenarios" == *model* ]]; then
    log "model: $n_model unaddressed messages as a backlog (one analyze pass each), then a paced run"
    scenario model-backlog model "$n_model" 0 --unaddressed
    scenario model-paced model "$paced_n" "$paced_rate" --unaddressed
  fi
  if [[ "$scenarios" == *split* ]]; then
    read -r split_n split_rate <<<"${TINYROUTE_BUS_SPLIT_PACED:-$paced_n $paced_rate}"
    log "split: $split_n addressed messages at $split_rate/s, summaries (bus.generate) for $split_agent only"
    scenario model-paced-split model "$split_n" "$split_rate" "--split $split_agent" \
      "  generate:\n    agents:\n      $split_agent: {fields: [summary], max_tokens: 48}\n"
  fi
  if [[ "$scenarios" == *model* || "$scenarios" == *split* ]]; then
    pp="$(sed -n 's/^TINYROUTE_LLAMA_BENCH:[A-Z]*=//p' "$build/CMakeCache.txt" | head -n1)"
    [[ -x "$pp" ]] || pp="$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/tinyroute/llama.cpp-*/install/bin/llama-bench 2>/dev/null | head -n1)"
    if [[ -x "$pp" ]]; then
      log "llama-bench: prompt-processing rate on the same model (the compute floor's numerator)"
      "$pp" -m "$model" -t "$threads" -p 64 -n 0 -d 0,2048 -r 2 -o json 2>/dev/null |
        python3 -c 'import json,sys; [print(json.dumps({"label": "llama-bench pp%d depth %d" % (r["n_prompt"], r.get("n_depth", 0)), "tokens_per_s": round(r["avg_ts"], 1)})) for r in json.load(sys.stdin)]'
    fi
  fi
} | tee "$results/bus.jsonl"
python3 - "$results/bus.jsonl" <<'PY' | tee "$results/bus.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump(rows, open(sys.argv[1].replace(".jsonl", ".json"), "w"), indent=2)
print("| scenario | messages | offered rate | messages/s | p50 ms | p95 ms | tokens/message | generate requests |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if "tokens_per_s" in r:
        continue
    rate = "backlog" if not r["rate"] else "%g/s" % r["rate"]
    print("| %s | %d | %s | %.2f | %d | %d | %s | %s |" % (r["label"], r["messages"], rate, r["messages_per_s"], r["p50_ms"],
          r["p95_ms"], r.get("tokens_per_message", "-"), r.get("generate_requests", "-")))
    for part in ("split", "others"):
        if part + "_p50_ms" in r:
            print("| %s: %s | %d | | | %d | %d | | |" % (r["label"], part, r[part + "_messages"], r[part + "_p50_ms"],
                  r[part + "_p95_ms"]))
for r in rows:
    if "tokens_per_s" in r:
        print("%s: %.1f tokens/s" % (r["label"], r["tokens_per_s"]))
PY
