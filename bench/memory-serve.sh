#!/usr/bin/env bash
# RSS of `tinyroute serve` itself with the TinyLlama-shaped model (issue 6, part 4), called by
# bench/run.sh as mode `memory-serve`: idle once the model has answered its first /v1/classify (every
# prefix the config needs is resident), the peak while 16 clients send /v1/classify and /v1/analyze
# requests (CLINC150 texts), and idle after. VmRSS is sampled every 100 ms from /proc.
# Usage: bench/memory-serve.sh BUILD_DIR MODEL RESULTS_DIR [CONFIG]
# Environment: TINYROUTE_BENCH_SERVE_REQUESTS (default 160), TINYROUTE_CLINC150 (the data directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="$(cd "$1" && pwd)"
model="$2"
results="$3"
config="${4:-$repo/config/tinyroute.yaml}"
requests="${TINYROUTE_BENCH_SERVE_REQUESTS:-160}"
data="${TINYROUTE_CLINC150:-$repo/../shared/data/clinc150}"
log() { echo "[bench memory-serve] $*" >&2; }

tinyroute="$build/src/cli/tinyroute"
[[ -x $tinyroute ]] || { log "build tinyroute-cli in $build first"; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/tinyroute-bench-mem.XXXXXX")"
pid=""
cleanup() {
  [[ -z $pid ]] || { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

started=$(date +%s.%N)
"$tinyroute" serve --config "$config" --model "$model" --host 127.0.0.1 --port "$port" --threads 2 \
  >"$work/serve.log" 2>&1 &
pid=$!
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

python3 - "$port" "$pid" "$requests" "$data/val.jsonl" "$started" "$(stat -c %s "$model")" \
  "$results/memory-serve.json" <<'PY'
import json, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

port, pid, n, data, started, model_bytes, out = sys.argv[1:8]
pid, n, started, model_bytes = int(pid), int(n), float(started), int(model_bytes)
base = f"http://127.0.0.1:{port}"

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])

def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status

texts = [json.loads(l)["text"] for l in open(data)][::7][:n]
for _ in range(1200):  # the gateway listens before the model is ready; the native endpoints wait for it
    try:
        if post("/v1/classify", {"text": "hello there"}) == 200:
            break
    except Exception:
        time.sleep(0.5)
ready_s = time.time() - started
time.sleep(2)
idle = rss_kib()

peak, stop = [idle], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.1)
sampler = threading.Thread(target=sample)
sampler.start()
t0 = time.time()
with ThreadPoolExecutor(16) as pool:
    codes = list(pool.map(lambda i: post("/v1/classify" if i % 2 == 0 else "/v1/analyze",
                                         {"text": texts[i % len(texts)]}), range(n)))
load_s = time.time() - t0
stop.set()
sampler.join()
time.sleep(2)
after = rss_kib()
mib = lambda k: k / 1024
result = {"model_mib": round(model_bytes / 2**20, 1), "ready_s": round(ready_s, 1),
          "rss_idle_mib": round(mib(idle), 1), "rss_peak_under_load_mib": round(mib(peak[0]), 1),
          "rss_idle_after_mib": round(mib(after), 1), "requests": n, "ok": codes.count(200),
          "load_s": round(load_s, 1), "target_mib": round(model_bytes / 2**20 + 250, 1)}
json.dump(result, open(out, "w"), indent=1)
print("\n### tinyroute serve RSS (MiB), TinyLlama-shaped model, 16 clients\n")
print("| model file | ready after s | RSS idle | RSS peak under load | RSS idle after | requests ok | target |")
print("|---|---|---|---|---|---|---|")
print(f"| {result['model_mib']} | {result['ready_s']} | {result['rss_idle_mib']} | "
      f"{result['rss_peak_under_load_mib']} | {result['rss_idle_after_mib']} | {result['ok']}/{n} | "
      f"≤ {result['target_mib']} |")
PY
