#!/usr/bin/env python3
"""tinyroute's routing-quality benchmark (`bench/run.sh quality`): tinyroute's strategies and its peers
on the same real model (Gemma 3 270M Q4_K_M unless --model says otherwise), the same data, in one run.

Tasks
  a  CLINC150's 10 domains as agents, out-of-scope -> triage (config/agents-clinc150.yaml)
  b  CLINC150's 150 intents (a generated config, one category per intent)
  c  config/tinyroute.yaml's task categories on bench/data/task-categories.jsonl (English + Russian)
  d  the Russian half of c, reported on its own (the same predictions)
  e  a again on a perturbed copy of its report split (seeded character swaps, dropped letters, case)

Splits: `train` (what a trained peer or head learns from), `calib` (where temperatures and thresholds are
fitted) and `report` (what the tables show; nothing is fitted on it). CLINC150's train split gives train
and calib, its validation split gives report.

Per task x method: accuracy, macro-F1, per-class precision/recall, out-of-scope recall and precision (a,
e), expected calibration error (15 bins) before and after temperature scaling, coverage at 95% precision
with the threshold fitted on calib, and p50/p95 latency of one request at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics  # noqa: E402
import peers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TRIAGE = "triage"


# ---------------------------------------------------------------------------------------------- data

def read_jsonl(path: Path) -> List[Dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def per_intent(rows: Sequence[Dict], start: int, count: int) -> List[Dict]:
    """`count` rows of every intent, from its `start`-th on, in file order (deterministic)."""
    seen: Dict[str, int] = {}
    out = []
    for r in rows:
        i = seen.get(r["intent"], 0)
        seen[r["intent"]] = i + 1
        if start <= i < start + count:
            out.append(r)
    return out


def perturb(text: str, rng: random.Random) -> str:
    """Typing noise: each word of 4+ letters is changed with probability 0.3 (two neighbouring letters
    swapped, or one dropped), and a third of the texts change case (all upper, or first letter flipped)."""
    words = []
    for w in text.split(" "):
        if len(w) >= 4 and rng.random() < 0.3:
            i = rng.randrange(1, len(w) - 1)
            w = w[:i] + w[i + 1] + w[i] + w[i + 2:] if rng.random() < 0.5 else w[:i] + w[i + 1:]
        words.append(w)
    out = " ".join(words)
    roll = rng.random()
    if roll < 1 / 6:
        out = out.upper()
    elif roll < 1 / 3 and out:
        out = out[0].swapcase() + out[1:]
    return out


class Task:
    def __init__(self, key: str, title: str, config: Path, labels_from: str, labels: List[Tuple[str, str]],
                 instructions: str, train: List[Dict], calib: List[Dict], report: List[Dict], oos: bool):
        self.key, self.title, self.config, self.labels_from = key, title, config, labels_from
        self.labels = labels  # (name, description)
        self.names = [n for n, _ in labels]
        self.instructions = instructions
        self.train, self.calib, self.report, self.oos = train, calib, report, oos


def yaml_labels(config: Path, section: str) -> List[Tuple[str, str]]:
    import yaml

    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    return [(e["name"], (e.get("description") or "").strip()) for e in doc[section]]


def build_tasks(args, work: Path) -> Dict[str, Task]:
    data = Path(args.data)
    train = read_jsonl(data / "train.jsonl")
    val = read_jsonl(data / "val.jsonl")
    oos_train = read_jsonl(data / "oos_train.jsonl")
    oos_val = read_jsonl(data / "oos_val.jsonl")
    domains = json.loads((data / "domains.json").read_text())

    def rows(rs: Sequence[Dict], label_key: str) -> List[Dict]:
        return [{"text": r["text"], "label": TRIAGE if r["domain"] == "oos" else r[label_key]} for r in rs]

    n_tr, n_val = args.train_per_intent, args.val_per_intent
    half = len(oos_train) // 2
    tasks: Dict[str, Task] = {}

    agents_cfg = REPO / "config" / "agents-clinc150.yaml"
    a = Task("a", "CLINC150 domains as agents + out-of-scope", agents_cfg, "agents", yaml_labels(agents_cfg, "agents"),
             "Choose the agent that should handle the request.",
             rows(per_intent(train, 0, n_tr) + oos_train[:half], "domain"),
             rows(per_intent(train, n_tr, 1) + oos_train[half:], "domain"),
             rows(per_intent(val, 0, n_val) + oos_val, "domain"), oos=True)
    tasks["a"] = a

    intents_cfg = work / "clinc150-intents.yaml"
    intents = [(i, d) for d, its in domains.items() for i in its]
    write_intents_config(intents_cfg, intents, per_intent(train, 0, n_tr))
    tasks["b"] = Task("b", "CLINC150's 150 intents", intents_cfg, "categories",
                      [(i, f"{i.replace('_', ' ')} ({d.replace('_', ' ')})") for i, d in intents],
                      "Classify the request into one intent.",
                      rows(per_intent(train, 0, n_tr), "intent"), rows(per_intent(train, n_tr, 1), "intent"),
                      rows(per_intent(val, 0, n_val), "intent"), oos=False)

    cats_cfg = REPO / "config" / "tinyroute.yaml"
    labelled = read_jsonl(Path(args.categories_data))
    c_train, c_calib, c_report = [], [], []
    seen: Dict[Tuple[str, str], int] = {}
    for r in labelled:
        item = {"text": r["text"], "label": r["label"], "lang": r["lang"]}
        if r["split"] == "test":
            c_report.append(item)
        else:  # of each label x language's train rows: the first 3 train, the rest calibrate
            k = (r["label"], r["lang"])
            seen[k] = seen.get(k, 0) + 1
            (c_train if seen[k] <= 3 else c_calib).append(item)
    tasks["c"] = Task("c", "task categories (English + Russian)", cats_cfg, "categories",
                      yaml_labels(cats_cfg, "categories"), "Classify the request into one task category.",
                      c_train, c_calib, c_report, oos=False)

    if args.augment:  # typing noise in training too: K perturbed copies of each train row, for every
        # trained method alike, from a seed of their own (the report's perturbation uses args.seed)
        aug_rng = random.Random(args.seed + 1)
        for t in tasks.values():
            t.train = t.train + [{**r, "text": perturb(r["text"], aug_rng)} for r in t.train for _ in range(args.augment)]
    rng = random.Random(args.seed)
    tasks["e"] = Task("e", "a on perturbed text", a.config, a.labels_from, a.labels, a.instructions, a.train,
                      a.calib, [{"text": perturb(r["text"], rng), "label": r["label"]} for r in a.report], oos=True)
    return tasks


def write_intents_config(path: Path, intents: Sequence[Tuple[str, str]], examples: Sequence[Dict]) -> None:
    """One category per intent, with its training requests as examples (the centroid strategy's
    only data; they are also part of the train split)."""
    lines = ["# Generated by bench/quality/quality.py: CLINC150's 150 intents as task categories.",
             "internal_model:", "  model: gemma-3-270m", "  threshold: 0.0", "",
             "categories:"]
    for intent, domain in intents:
        lines += [f"  - name: {intent}", f"    description: \"{intent.replace('_', ' ')} ({domain.replace('_', ' ')})\"",
                  "    examples: [" + ", ".join(json.dumps(r["text"]) for r in examples if r["intent"] == intent) + "]"]
    lines += ["", "models:", "  - name: answer-model", "    provider: ollama", "    base_url: http://127.0.0.1:11434",
              "    categories: [" + ", ".join(i for i, _ in intents) + "]", "", f"default_category: {intents[0][0]}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


# -------------------------------------------------------------------------------------------- running

def write_items(path: Path, items: Sequence[Dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in items:
            f.write(json.dumps({"text": r["text"], "label": r["label"]}, ensure_ascii=False) + "\n")


def tinyroute_cmd(args, task: Task, verb: str, data: Path) -> List[str]:
    cmd = [args.tinyroute, verb, str(data), "--config", str(task.config), "--model", args.model,
           "--labels-from", task.labels_from]
    return cmd + (["--hidden-layer", str(args.hidden_layer)] if args.hidden_layer is not None else [])


def train_head(args, task: Task, work: Path, fusion: bool) -> None:
    """`tinyroute train` on the task's train split: the head (and the fusion beside it, fitted on the head's
    held-out part of that split) is stored for this model and label set, where `eval --strategy head|fused`
    finds it."""
    data = work / f"{task.key}-train.jsonl"
    write_items(data, task.train)
    t0 = time.time()
    cmd = tinyroute_cmd(args, task, "train", data) + ([] if fusion else ["--no-fusion"])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"tinyroute train failed:\n{out.stderr[-2000:]}")
    log(f"  tinyroute train [{task.key}]: {len(task.train)} examples in {time.time() - t0:.1f} s")


def run_tinyroute(args, task: Task, strategy: str, items: Sequence[Dict], work: Path, tag: str,
                  serial: bool = False, prompts: bool = False) -> Tuple[List[Dict], Optional[List[Dict]]]:
    data = work / f"{tag}.jsonl"
    write_items(data, items)
    pred, prm = work / f"{tag}.pred.jsonl", work / f"{tag}.prompts.jsonl"
    cmd = tinyroute_cmd(args, task, "eval", data) + ["--strategy", strategy, "--predictions", str(pred), "--json"]
    if serial:
        cmd += ["--serial"]
    if prompts:
        cmd += ["--prompts", str(prm)]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"tinyroute eval failed ({' '.join(cmd)}):\n{out.stderr[-2000:]}")
    log(f"  tinyroute {strategy} [{tag}]: {len(items)} requests in {time.time() - t0:.1f} s")
    return read_jsonl(pred), (read_jsonl(prm) if prompts else None)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ reporting

def evaluate(task: Task, calib: List[Dict[str, float]], report: List[Dict[str, float]], latency: List[float]) -> Dict:
    names = task.names
    idx = {n: i for i, n in enumerate(names)}

    def matrix(ps: List[Dict[str, float]]) -> np.ndarray:
        m = np.array([[p.get(n, 0.0) for n in names] for p in ps], dtype=float)
        return m / np.clip(m.sum(axis=1, keepdims=True), 1e-12, None)

    pc, pr = matrix(calib), matrix(report)
    gc = np.array([idx[r["label"]] for r in task.calib])
    gr = [r["label"] for r in task.report]
    temperature = metrics.fit_temperature(pc, gc)
    pc_t, pr_t = metrics.apply_temperature(pc, temperature), metrics.apply_temperature(pr, temperature)

    top_r = [names[i] for i in pr.argmax(axis=1)]
    conf_r_raw = pr.max(axis=1)
    conf_r = pr_t.max(axis=1)
    correct_r = [t == g for t, g in zip(top_r, gr)]
    top_c = [names[i] for i in pc_t.argmax(axis=1)]
    conf_c = pc_t.max(axis=1)
    correct_c = [t == names[g] for t, g in zip(top_c, gc)]

    result = {"temperature": temperature}
    if task.oos:  # below the threshold fitted on calib the request goes to triage
        t_abs = metrics.abstain_threshold(names, [names[g] for g in gc], top_c, conf_c, TRIAGE)
        decision = [t if c >= t_abs else TRIAGE for t, c in zip(top_r, conf_r)]
        result["abstain_threshold"] = t_abs
    else:
        decision = top_r
    result.update(metrics.classification(names, gr, decision))
    if task.oos:
        pcs = result["per_class"][TRIAGE]
        result["oos_recall"], result["oos_precision"] = pcs["recall"], pcs["precision"]
    result["ece_raw"] = metrics.ece(conf_r_raw, correct_r)
    result["ece"] = metrics.ece(conf_r, correct_r)
    t95 = metrics.threshold_for_precision(conf_c, correct_c, 0.95)
    result["at_95"] = metrics.coverage_at(conf_r, correct_r, t95)
    result["latency_p50_ms"] = metrics.percentile(latency, 50)
    result["latency_p95_ms"] = metrics.percentile(latency, 95)
    result["decisions"] = decision
    return result


def fmt(v, digits=3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and (v != v or v == float("inf")):
        return "—"
    return f"{v:.{digits}f}"


def table(task: Task, results: Dict[str, Dict]) -> str:
    oos = task.oos
    head = "| method | accuracy | macro-F1 |" + (" OOS recall | OOS precision |" if oos else "") + \
        " ECE raw → fitted | coverage @95% P (P) | p50 / p95 ms |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        cov = r["at_95"]
        rows.append(f"| {name} | {fmt(r['accuracy'])} | {fmt(r['macro_f1'])} |" +
                    (f" {fmt(r['oos_recall'])} | {fmt(r['oos_precision'])} |" if oos else "") +
                    f" {fmt(r['ece_raw'])} → {fmt(r['ece'])} | {fmt(cov['coverage'])} ({fmt(cov['precision'])}) |"
                    f" {fmt(r['latency_p50_ms'], 0)} / {fmt(r['latency_p95_ms'], 0)} |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------ main

def write_outputs(args, out: Path, tasks: Dict[str, Task], all_results: Dict[str, Dict[str, Dict]],
                  seconds: float) -> str:
    titles = {k: t.title for k, t in tasks.items()}
    md = [f"Model: {Path(args.model).name}; {args.threads} threads; seed {args.seed}; "
          f"{args.train_per_intent} train + 1 calib per intent, {args.val_per_intent} report per intent "
          f"(CLINC150 validation)" + (f"; {args.augment} perturbed cop{'y' if args.augment == 1 else 'ies'} of "
                                       f"each train row" if args.augment else "") + f"; {seconds:.0f} s in all.\n"]
    for key, results in all_results.items():
        md.append(f"### ({key}) {titles[key]}: {len(tasks[key].report)} requests\n")
        md.append(table(tasks[key], results) + "\n")
    text = "\n".join(md)
    (out / "quality.md").write_text(text, encoding="utf-8")
    plain = {k: {m: {f: v for f, v in r.items() if f != "decisions"} for m, r in res.items()}
             for k, res in all_results.items()}
    (out / "quality.json").write_text(json.dumps({"model": args.model, "args": vars(args), "results": plain},
                                                 indent=1, ensure_ascii=False), encoding="utf-8")
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tinyroute", required=True)
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--model", required=True, help="the GGUF every LLM method uses")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "clinc150"))
    ap.add_argument("--categories-data", default=str(REPO / "bench" / "data" / "task-categories.jsonl"))
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--tasks", default="a,b,c,d,e")
    ap.add_argument("--strategies", default="choice,score,centroid,head,fused", help="tinyroute strategies to run")
    ap.add_argument("--peers", default="grammar,letters,minilm")
    ap.add_argument("--skip", default="b:score,b:fused",
                    help="task:method pairs not run (default b:score,b:fused: 150 continuations per request, "
                         "~17 s each on 2 cores)")
    ap.add_argument("--hidden-layer", type=int, default=None,
                    help="centroid/head read this block's output (tinyroute --hidden-layer); default: the config's")
    ap.add_argument("--train-per-intent", type=int, default=10)
    ap.add_argument("--val-per-intent", type=int, default=2)
    ap.add_argument("--augment", type=int, default=0,
                    help="add K perturbed copies of every train row (typing noise, its own seed) for the trained methods")
    ap.add_argument("--latency-n", type=int, default=40, help="requests timed one at a time per method")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=150)
    ap.add_argument("--calib-max", type=int, default=0,
                    help="keep every k-th calib item so that each task has at most N (0 = all)")
    ap.add_argument("--max-items", type=int, default=0,
                    help="smoke runs: keep every k-th calib and report item so that each has at most N (0 = all)")
    args = ap.parse_args()

    out = Path(args.out)
    work = out / "quality-work"
    work.mkdir(parents=True, exist_ok=True)
    wanted = args.tasks.split(",")
    tasks = build_tasks(args, work)
    if args.calib_max:
        for t in tasks.values():
            t.calib = t.calib[:: max(1, -(-len(t.calib) // args.calib_max))]
    if args.max_items:
        for t in tasks.values():
            t.calib = t.calib[:: max(1, -(-len(t.calib) // args.max_items))]
            t.report = t.report[:: max(1, -(-len(t.report) // args.max_items))]
    strategies = [s for s in args.strategies.split(",") if s]
    peer_names = [p for p in args.peers.split(",") if p]
    skipped = set(args.skip.split(","))
    encoder = peers.MiniLM(args.threads) if "minilm" in peer_names else None

    all_results: Dict[str, Dict[str, Dict]] = {}
    trained = set()
    started = time.time()
    for key in ("a", "c", "e", "b"):
        if key not in wanted and not (key == "c" and "d" in wanted):
            continue
        task = tasks[key]
        log(f"[quality] task {key}: {task.title}: train {len(task.train)}, calib {len(task.calib)}, "
            f"report {len(task.report)}, {len(task.names)} labels")
        items = task.calib + task.report
        n_c = len(task.calib)
        lat_items = task.report[: args.latency_n]
        probs: Dict[str, Tuple[List[Dict], List[Dict], List[float]]] = {}
        prompts = None
        for s in strategies:
            if s == "choice" and len(task.names) > 26:
                continue  # one-letter codes: at most 26 labels
            if f"{key}:{s}" in skipped:
                continue
            if s in ("head", "fused") and (task.config, task.labels_from) not in trained:
                # e reuses a's head: the same model and label set. The fusion's prompt pass is skipped
                # where fused is not run (b: 150 label names scored per held-out request).
                fused = "fused" in strategies and f"{key}:fused" not in skipped
                train_head(args, task, work, fused)
                trained.add((task.config, task.labels_from))
            preds, prm = run_tinyroute(args, task, s, items, work, f"{key}-{s}", prompts=(s == "choice"))
            if prm is not None:
                prompts = prm
            lat, _ = run_tinyroute(args, task, s, lat_items, work, f"{key}-{s}-latency", serial=True)
            ps = [p["probs"] for p in preds]
            probs[f"tinyroute {s}"] = (ps[:n_c], ps[n_c:], [p["latency_ms"] for p in lat])
        grammar = "grammar" in peer_names and f"{key}:grammar" not in skipped
        needs_server = grammar or ("letters" in peer_names and prompts is not None)
        if needs_server:
            with peers.llama_server(args.llama_server, args.model, args.threads) as base:
                if grammar:
                    t0 = time.time()
                    got = peers.grammar_peer(base, task.labels, task.instructions, [r["text"] for r in items])
                    log(f"  grammar peer: {len(items)} requests in {time.time() - t0:.1f} s")
                    probs["llama-server grammar"] = ([p for p, _ in got[:n_c]], [p for p, _ in got[n_c:]],
                                                     [ms for _, ms in got[n_c:][: args.latency_n]])
                if "letters" in peer_names and prompts is not None:
                    t0 = time.time()
                    got = peers.letters_peer(base, prompts)
                    log(f"  letters peer: {len(items)} requests in {time.time() - t0:.1f} s")
                    probs["llama-server letters (n_probs)"] = ([p for p, _ in got[:n_c]], [p for p, _ in got[n_c:]],
                                                               [ms for _, ms in got[n_c:][: args.latency_n]])
        if encoder is not None:
            t0 = time.time()
            got = peers.embedding_peers(encoder, task.names, [(r["text"], r["label"]) for r in task.train],
                                        [r["text"] for r in items], [r["text"] for r in lat_items])
            log(f"  MiniLM peers: {len(items)} requests in {time.time() - t0:.1f} s")
            for name, (ps, lat) in got.items():
                probs[name] = ([p for p, _ in ps[:n_c]], [p for p, _ in ps[n_c:]], lat)

        results = {name: evaluate(task, c, r, lat) for name, (c, r, lat) in probs.items()}
        if key in wanted:
            all_results[key] = results
        if key == "c" and "d" in wanted:  # the Russian half of c, the same predictions
            ru = [i for i, r in enumerate(task.report) if r.get("lang") == "ru"]
            sub = Task("d", "c, Russian half", task.config, task.labels_from, task.labels, task.instructions,
                       task.train, task.calib, [task.report[i] for i in ru], oos=False)
            en = [i for i, r in enumerate(task.report) if r.get("lang") == "en"]
            sub_en = Task("c-en", "c, English half", task.config, task.labels_from, task.labels, task.instructions,
                          task.train, task.calib, [task.report[i] for i in en], oos=False)
            all_results["d"] = {n: evaluate(sub, c, [r[i] for i in ru], lat) for n, (c, r, lat) in probs.items()}
            all_results["c-en"] = {n: evaluate(sub_en, c, [r[i] for i in en], lat) for n, (c, r, lat) in probs.items()}
            tasks["d"], tasks["c-en"] = sub, sub_en
        write_outputs(args, out, tasks, all_results, time.time() - started)
        log(f"[quality] task {key} done after {time.time() - started:.0f} s")

    print(write_outputs(args, out, tasks, all_results, time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
