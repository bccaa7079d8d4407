#!/usr/bin/env bash
# Writes the data for measuring the hidden-state strategies (centroid, head) on CLINC150 agent routing:
#   OUT_DIR/clinc150-agents-train.jsonl  the first TRAIN_PER_INTENT train.jsonl requests of every intent,
#                                        labelled with its domain's agent, and the first 10*TRAIN_PER_INTENT oos_train requests
#                                        labelled triage (for `tinyroute train --labels-from agents`);
#   OUT_DIR/clinc150-agents-val.jsonl    the first VAL_PER_INTENT val.jsonl requests of every intent and
#                                        the first 10*VAL_PER_INTENT oos_val requests (for `tinyroute eval`).
# Training and evaluation come from CLINC150's separate train and validation splits.
#
#   scripts/clinc150-head-data.sh [DATA_DIR] [OUT_DIR] [TRAIN_PER_INTENT] [VAL_PER_INTENT]
#   defaults: ../shared/data/clinc150 (beside the repository), build/eval, 20, 5.
set -euo pipefail
data=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/data/clinc150}
out=${2:-build/eval}
mkdir -p "$out"
python3 - "$data" "$out" "${3:-20}" "${4:-5}" <<'PY'
import json, sys
data, out, n_train, n_val = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
agents = set(json.load(open(f"{data}/domains.json")))

def write(path, sources, per_intent, oos_limit):
    seen, counts = {}, {}
    with open(path, "w", encoding="utf-8") as f:
        for name in sources:
            for line in open(f"{data}/{name}", encoding="utf-8"):
                r = json.loads(line)
                oos = r["domain"] == "oos"
                key = "oos" if oos else r["intent"]
                seen[key] = seen.get(key, 0) + 1
                if seen[key] > (oos_limit if oos else per_intent):
                    continue
                label = "triage" if oos else r["domain"]
                if label != "triage" and label not in agents:
                    sys.exit(f"{name}: domain {r['domain']!r} is not an agent in domains.json")
                f.write(json.dumps({"text": r["text"], "label": label}, ensure_ascii=False) + "\n")
                counts[label] = counts.get(label, 0) + 1
    print(f"{path}: {sum(counts.values())} requests, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
          file=sys.stderr)

write(f"{out}/clinc150-agents-train.jsonl", ("train.jsonl", "oos_train.jsonl"), n_train, 10 * n_train)
write(f"{out}/clinc150-agents-val.jsonl", ("val.jsonl", "oos_val.jsonl"), n_val, 10 * n_val)
PY
