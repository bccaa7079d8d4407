#!/usr/bin/env bash
# Writes an agent-routing eval set for `tinyroute eval` from CLINC150's validation splits: each
# in-scope request labelled with its domain's agent (config/agents-clinc150.yaml), each out-of-scope
# request labelled "triage". One JSON object per line: {"text": ..., "label": ...}.
#
#   scripts/clinc150-agents-eval.sh [DATA_DIR] [OUT]
#   DATA_DIR defaults to ../shared/data/clinc150 (beside the repository), OUT to build/eval/clinc150-agents.jsonl.
set -euo pipefail
data=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/data/clinc150}
out=${2:-build/eval/clinc150-agents.jsonl}
mkdir -p "$(dirname "$out")"
python3 - "$data" "$out" <<'PY'
import json, sys
data, out = sys.argv[1], sys.argv[2]
agents = set(json.load(open(f"{data}/domains.json")))  # one agent per domain, same names
counts = {}
with open(out, "w", encoding="utf-8") as f:
    for name in ("val.jsonl", "oos_val.jsonl"):
        for line in open(f"{data}/{name}", encoding="utf-8"):
            r = json.loads(line)
            label = "triage" if r["domain"] == "oos" else r["domain"]
            if label != "triage" and label not in agents:
                sys.exit(f"{name}: domain {r['domain']!r} is not an agent in domains.json")
            f.write(json.dumps({"text": r["text"], "label": label}, ensure_ascii=False) + "\n")
            counts[label] = counts.get(label, 0) + 1
print(f"{out}: {sum(counts.values())} requests, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
      file=sys.stderr)
PY
