#!/usr/bin/env python3
"""The quality guard (ctest quality_guard, label realmodel): config/agents-clinc150.yaml on the real model
routes a fixed slice of CLINC150 validation requests (the first 2 of each of the 150 intents: 300
requests, each labelled with its domain's agent) with the `centroid` strategy, and its
accuracy must stay within 3 points (either way: a gain means the record is stale) of the figure recorded
in BENCHMARKS.md on the line

    quality-guard: accuracy 0.xxx on the real model (...)

Why centroid: it is the best strategy that needs no training step (a head needs `tinyroute train`), and
the prompt strategies are near zero on this 270M model (BENCHMARKS.md, section 7): a guard on them could
not see a regression. Standard library only. Exits 77 (skipped) when the model or the data is missing, unless CI=true."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TOLERANCE = 0.03


def skip_or_fail(reason: str) -> int:
    if os.environ.get("CI") == "true":
        print(f"quality guard: {reason} (CI=true: this is a failure)")
        return 1
    print(f"quality guard skipped: {reason}")
    return 77


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tinyroute", required=True)
    ap.add_argument("--repo", required=True)
    args = ap.parse_args()
    repo = Path(args.repo).resolve()
    data = Path(os.environ.get("TINYROUTE_CLINC150", repo.parent / "shared" / "data" / "clinc150"))
    cache = Path(os.environ.get("TINYROUTE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyroute")
    model = cache / "models" / "gemma-3-270m-q4_k_m.gguf"
    if not model.exists():
        return skip_or_fail(f"no real model at {model} (run scripts/fetch-model.sh)")
    if not (data / "val.jsonl").exists():
        return skip_or_fail(f"no CLINC150 data at {data}")

    recorded = re.search(r"quality-guard: accuracy ([0-9.]+)", (repo / "BENCHMARKS.md").read_text(encoding="utf-8"))
    if not recorded:
        print("quality guard: BENCHMARKS.md has no 'quality-guard: accuracy X' line")
        return 1
    expected = float(recorded.group(1))

    seen = {}
    with tempfile.TemporaryDirectory() as tmp:
        slice_path = Path(tmp) / "slice.jsonl"
        with open(data / "val.jsonl", encoding="utf-8") as src, open(slice_path, "w", encoding="utf-8") as out:
            for line in src:
                r = json.loads(line)
                seen[r["intent"]] = seen.get(r["intent"], 0) + 1
                if seen[r["intent"]] <= 2:
                    out.write(json.dumps({"text": r["text"], "label": r["domain"]}) + "\n")
        cmd = [args.tinyroute, "eval", str(slice_path), "--config", str(repo / "config" / "agents-clinc150.yaml"),
               "--model", str(model), "--labels-from", "agents", "--strategy", "centroid", "--json"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            print(f"quality guard: {' '.join(cmd)} failed ({run.returncode}):\n{run.stderr[-3000:]}")
            return 1
        result = json.loads(run.stdout)
    accuracy, n = result["accuracy"], result["total"]
    print(f"quality guard: accuracy {accuracy:.3f} on {n} requests; BENCHMARKS.md records {expected:.3f} "
          f"(allowed: {expected - TOLERANCE:.3f} to {expected + TOLERANCE:.3f})")
    if n != 300:
        print(f"quality guard: the slice has {n} requests, not 300")
        return 1
    if abs(accuracy - expected) > TOLERANCE:
        print("quality guard: more than 3 points " + ("below the record: routing quality regressed" if accuracy < expected
              else "above the record: run bench/run.sh quality and record the new figures in BENCHMARKS.md"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
