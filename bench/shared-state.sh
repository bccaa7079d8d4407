#!/usr/bin/env bash
# serve on several machines (`bench/run.sh shared-state`): the decision cache and conversations in Redis
# (shared_state) against the in-process ones. One redis-server on a free port; `tinyroute serve`
# processes on the agents config of config/agents-clinc150.yaml (every analyze decision).
#
#  1. cache hit through HTTP, in-process: one serve; each of N requests is asked once (the model), then
#     repeated 20 times over one kept-alive connection (POST /v1/route), timed at the client.
#  2. cache hit through HTTP, in Redis: two serve processes on one Redis; the first ask goes to one,
#     the 20 repeats to the other (every hit is a Redis read of a decision the other process stored).
#  3. conversations: C conversations x T turns, interleaved (turn t of every conversation, then t+1),
#     through POST /v1/analyze: one serve without Redis, then the two on Redis with each conversation
#     alternating between them; every decision (category, agent, the four fields) compared.
#
# Prints a markdown table and writes bench/results/shared-state.json.
#
# Environment:
#   TINYROUTE_BENCH_BUILD   build tree (default: build/bench)
#   TINYROUTE_THREADS       internal-model threads per serve (default: 2)
#   TINYROUTE_SHARED_MODEL  model (default: the TinyLlama-shaped bench model)
#   TINYROUTE_BENCH_HIDDEN_LAYER  the config's hidden_layer (default: its 12; 0 for a model with fewer blocks)
#   TINYROUTE_SHARED_N_CACHE          requests in the cache runs, each repeated 20 times (default: 50)
#   TINYROUTE_SHARED_CONVERSATIONS / TINYROUTE_SHARED_TURNS   the conversation run (default: 16 x 4)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_tag="bench:shared-state"
bench_build tinyroute-cli tinyroute-mkmodel
cli="$build/src/cli/tinyroute"
model="${TINYROUTE_SHARED_MODEL:-}"
[[ -n "$model" ]] || model="$(TINYROUTE_BUILD_DIR="$build" "$repo/scripts/make-bench-model.sh" | tail -n1)"

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

# The agents config (analyze then decides the agent too), with a second task category (analyze needs
# two), no routing deadline (every answer is the model's) and the prefix state kept for the next start.
sed -e "s|^  model: .*|  model: $model\n  threads: $threads\n  state_dir: $work/state|" \
  -e 's|^categories:$|categories:\n  - name: coding\n    description: Writing or debugging code.|' \
  -e 's|categories: \[chat\]|categories: [chat, coding]|' -e '/deadline_ms/d' \
  -e "s|^  hidden_layer: .*|  hidden_layer: ${TINYROUTE_BENCH_HIDDEN_LAYER:-12}|" \
  "$repo/config/agents-clinc150.yaml" >"$work/local.yaml"
cp "$work/local.yaml" "$work/shared.yaml"
printf 'shared_state:\n  redis: redis://127.0.0.1:%s\n' "$redis_port" >>"$work/shared.yaml"

serve_port=""
start_serve() { # name config: sets serve_port once /health answers
  local name=$1 config=$2 pid
  serve_port="$(free_port)"
  "$cli" serve --config "$config" --port "$serve_port" >"$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  until curl -sf "http://127.0.0.1:$serve_port/health" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
    sleep 0.2
  done
}

log "model $model, $threads threads per serve; redis on :$redis_port"
start_serve local "$work/local.yaml"
local_port=$serve_port
start_serve a "$work/shared.yaml"
a_port=$serve_port
start_serve b "$work/shared.yaml"
b_port=$serve_port
log "serve: local :$local_port, a :$a_port and b :$b_port on redis"

mkdir -p "$results"
python3 - "$local_port" "$a_port" "$b_port" "$redis_port" "${TINYROUTE_SHARED_N_CACHE:-50}" \
  "${TINYROUTE_SHARED_CONVERSATIONS:-16}" "${TINYROUTE_SHARED_TURNS:-4}" "$results/shared-state.json" <<'PY'
import http.client, json, statistics, sys, time

local_port, a_port, b_port, redis_port, n_cache, n_conv, n_turns = map(int, sys.argv[1:8])
out_path = sys.argv[8]
conns = {}

def post(port, path, body, again=True):
    c = conns.get(port) or conns.setdefault(port, http.client.HTTPConnection("127.0.0.1", port))
    t0 = time.perf_counter()
    try:
        c.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        r = c.getresponse()
        data = r.read()
    except (ConnectionError, http.client.HTTPException):
        # serve closed a keep-alive connection that sat idle (during the other runs): a new one, once
        c.close()
        del conns[port]
        if not again:
            raise
        return post(port, path, body, False)
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        raise SystemExit(f"{path} on :{port} answered {r.status}: {data[:300]!r}")
    return json.loads(data), ms

def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None

# Requests: short agent-style asks, distinct from each other.
subjects = ["invoice", "refund", "flight", "password", "deployment", "meeting", "recipe", "transfer",
            "balance", "timer", "weather", "translation", "alarm", "playlist", "insurance", "car rental"]
verbs = ["check the", "cancel my", "what is the status of the", "help me with the", "update the"]
requests = [f"{verbs[i % len(verbs)]} {subjects[i % len(subjects)]} number {i}" for i in range(n_cache)]

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

rows = []
def cache_run(label, first_port, repeat_port):
    first, hits, sources = [], [], set()
    for text in requests:
        body = {"messages": [{"role": "user", "content": text + " " + label}]}
        r, ms = post(first_port, "/v1/route", body)
        first.append(ms)
        for _ in range(20):
            r2, ms = post(repeat_port, "/v1/route", body)
            sources.add(r2["source"])
            if r2["category"] != r["category"] or r2["model"] != r["model"]:
                raise SystemExit(f"{label}: a hit answered differently for {text!r}")
            hits.append(ms)
    if sources != {"cache"}:
        raise SystemExit(f"{label}: repeats came from {sources}, not only the cache")
    rows.append({"run": label, "ask": "first (model)", "n": len(first), "p50_ms": pct(first, 50), "p95_ms": pct(first, 95)})
    rows.append({"run": label, "ask": "repeat (cache hit)", "n": len(hits), "p50_ms": pct(hits, 50), "p95_ms": pct(hits, 95)})

cache_run("in-process", local_port, local_port)
cache_run("redis", a_port, b_port)

topics = ["my invoice from march", "the refund for order 4411", "booking a flight to Madrid",
          "resetting my password", "the failed deployment on prod", "moving tomorrow's meeting",
          "a pasta recipe for four", "a transfer to my savings", "my card balance", "a timer for tea",
          "rain in Berlin this weekend", "translating a letter to German", "an alarm for 6 am",
          "a playlist for running", "my car insurance claim", "renting a car in Lisbon"]
follow = ["I need help with {}", "it is about {} again, any news?", "also, what about {}?",
          "thanks; one more thing about {}", "and can you summarise {}", "last question on {}"]
def message(c, t):
    return follow[t % len(follow)].format(topics[(c + t) % len(topics)])

def decisions(r):
    return (r["category"]["category"], (r["agent"] or {}).get("agent"),
            tuple(sorted((k, v["value"]) for k, v in r["fields"].items())), r["conversation"]["turns"])
def confidences(r):
    return [r["category"]["confidence"], (r["agent"] or {}).get("confidence", 0)] + \
           [v["confidence"] for _, v in sorted(r["fields"].items())]

def conversation_run(ports, tag):
    got, ms = {}, []
    for t in range(n_turns):
        for c in range(n_conv):
            port = ports[(c + t) % len(ports)]
            r, took = post(port, "/v1/analyze", {"conversation": f"{tag}-{c}", "message_id": f"{c}-{t}",
                                                 "text": message(c, t)})
            got[(c, t)] = r
            ms.append(took)
    return got, ms

one, one_ms = conversation_run([local_port], "one")
two, two_ms = conversation_run([a_port, b_port], "two")
same = sum(decisions(one[k]) == decisions(two[k]) for k in one)
max_delta = max(abs(x - y) for k in one for x, y in zip(confidences(one[k]), confidences(two[k])))
sources = {}
for r in two.values():
    sources[r["conversation"]["source"]] = sources.get(r["conversation"]["source"], 0) + 1
conv = {"conversations": n_conv, "turns": n_turns, "messages": len(one), "identical": same,
        "max_confidence_delta": max_delta, "one_p50_ms": pct(one_ms, 50), "two_p50_ms": pct(two_ms, 50),
        "two_sources": sources,
        "fallbacks": [metric(p, "tinyroute_conversation_shared_fallbacks_total") for p in (a_port, b_port)] +
                     [metric(p, "tinyroute_decision_cache_shared_fallbacks_total") for p in (a_port, b_port)]}
json.dump({"cache": rows, "conversations": conv}, open(out_path, "w"), indent=2)

print("| run | ask | n | p50 ms | p95 ms |")
print("|---|---|---:|---:|---:|")
for r in rows:
    print(f"| {r['run']} | {r['ask']} | {r['n']} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} |")
print()
print(f"conversations: {n_conv} x {n_turns} turns interleaved, {len(one)} messages: two processes on redis "
      f"gave the same decisions as one process without it for {same}/{len(one)} "
      f"(largest confidence difference {max_delta:.2e}); analyze p50 {conv['one_p50_ms']:.0f} ms (one) vs "
      f"{conv['two_p50_ms']:.0f} ms (two); conversation sources on the two: {sources}; "
      f"shared-state fallbacks {conv['fallbacks']}")
if same != len(one):
    sys.exit(1)
PY
