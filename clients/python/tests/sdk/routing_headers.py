"""What every SDK test checks in tinyroute's routing headers (src/gateway/gateway.cpp, headers_for)."""

from __future__ import annotations

from typing import Mapping

from conftest import CATEGORIES

ROUTING_HEADERS = (
    "x-tinyroute-category",
    "x-tinyroute-model",
    "x-tinyroute-confidence",
    "x-tinyroute-route-ms",
    "x-tinyroute-decision-source",
)
ANSWER_MODELS = ("big", "spare")


def check_routing_headers(headers: Mapping[str, str], *, model: str, routed: bool) -> None:
    """`routed`: the request said "auto", so the router decided; else the request named `model`."""
    missing = [h for h in ROUTING_HEADERS if h not in headers]
    assert not missing, (missing, dict(headers))
    assert headers["x-tinyroute-model"] == model
    assert float(headers["x-tinyroute-route-ms"]) >= 0
    assert 0.0 <= float(headers["x-tinyroute-confidence"]) <= 1.0
    if routed:
        assert headers["x-tinyroute-category"] in CATEGORIES
        assert headers["x-tinyroute-decision-source"] in ("model", "default", "rule", "cache")
    else:
        assert headers["x-tinyroute-decision-source"] == "explicit"
