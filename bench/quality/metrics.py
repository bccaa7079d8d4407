"""Metrics of the quality benchmark: accuracy, macro-F1, per-class precision/recall, expected calibration
error, temperature scaling and abstention thresholds. Everything that is fitted (temperature, thresholds)
is fitted on the calibration split and only applied to the report split."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np


def classification(labels: Sequence[str], gold: Sequence[str], pred: Sequence[str]) -> Dict:
    """Accuracy, macro-F1 over the labels that occur in `gold`, and per-class precision/recall/F1."""
    per_class = {}
    f1s = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred) if g == label and p != label)
        support = tp + fn
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support:
            f1s.append(f1)
    accuracy = sum(1 for g, p in zip(gold, pred) if g == p) / len(gold) if gold else 0.0
    return {"n": len(gold), "accuracy": accuracy, "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
            "per_class": per_class}


def ece(confidence: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float:
    """Expected calibration error with equal-width confidence bins (Guo et al. 2017)."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            total += mask.sum() / len(conf) * abs(ok[mask].mean() - conf[mask].mean())
    return float(total)


def _tempered(logp: np.ndarray, temperature: float) -> np.ndarray:
    z = logp / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-12, 1.0))


def fit_temperature(probs: np.ndarray, gold_index: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of `gold_index` (a 1-D grid search over
    log-spaced values: one parameter, so a grid is exact enough and cannot diverge)."""
    logp = log_probs(probs)
    best_t, best_nll = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.02), math.log(50.0), 400)):
        p = _tempered(logp, t)
        nll = -np.mean(np.log(np.clip(p[np.arange(len(gold_index)), gold_index], 1e-12, 1.0)))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    return _tempered(log_probs(probs), temperature)


def threshold_for_precision(confidence: Sequence[float], correct: Sequence[bool], target: float) -> float:
    """The lowest confidence threshold whose accepted set (confidence >= threshold) reaches `target`
    precision; +inf when none does (then everything abstains)."""
    order = np.argsort(-np.asarray(confidence, dtype=float), kind="stable")
    conf = np.asarray(confidence, dtype=float)[order]
    ok = np.asarray(correct, dtype=float)[order]
    precision = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    best: Optional[float] = None
    for i in range(len(conf)):
        # a threshold can only cut between distinct confidences
        if (i + 1 == len(conf) or conf[i + 1] < conf[i]) and precision[i] >= target:
            best = float(conf[i])
    return best if best is not None else math.inf


def coverage_at(confidence: Sequence[float], correct: Sequence[bool], threshold: float) -> Dict:
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    accepted = conf >= threshold
    return {"threshold": threshold, "coverage": float(accepted.mean()) if len(conf) else 0.0,
            "precision": float(ok[accepted].mean()) if accepted.any() else None}


def abstain_threshold(labels: Sequence[str], gold: Sequence[str], top: Sequence[str],
                      confidence: Sequence[float], fallback: str) -> float:
    """The threshold below which the decision falls back to `fallback` (out-of-scope -> triage) that
    maximises macro-F1 on the calibration split."""
    candidates = sorted(set([0.0] + [float(c) for c in confidence]))
    best_t, best_f1 = 0.0, -1.0
    for t in candidates:
        pred = [p if c >= t else fallback for p, c in zip(top, confidence)]
        f1 = classification(labels, gold, pred)["macro_f1"]
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = t, f1
    return best_t


def percentile(values: List[float], q: float) -> Optional[float]:
    return float(np.percentile(values, q)) if values else None
