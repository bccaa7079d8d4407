"""Retries with exponential backoff and jitter, against small scripted HTTP servers (a real tinyroute
does not answer 429 or 5xx on demand): idempotent calls are retried on 429/5xx/connection failures and
succeed when the server recovers; non-idempotent ones never are; Retry-After is honoured; the sync and
async clients behave the same because they run the same plan (tinyroute/_core.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from conftest import free_port, scripted_server
from test_errors import CLASSIFICATION
from tinyroute import (
    APIConnectionError,
    BadRequestError,
    Client,
    RateLimitError,
    Retry,
    ServerError,
    ServiceUnavailableError,
    TinyrouteClient,
)

FAST = Retry(attempts=3, backoff=0.2, max_backoff=2.0)
DOWN = {"error": {"message": "warming up", "type": "service_unavailable", "code": "service_unavailable"}}


def call(kind: str, url: str, method: str, *args: Any, retry: Retry = FAST, **kwargs: Any) -> Any:
    """`method` on the sync Client or the async TinyrouteClient."""
    if kind == "sync":
        with Client(url, retry=retry, timeout=5) as tr:
            return getattr(tr, method)(*args, **kwargs)

    async def go() -> Any:
        async with TinyrouteClient(url, retry=retry, timeout=5) as tr:
            return await getattr(tr, method)(*args, **kwargs)

    return asyncio.run(go())


both = pytest.mark.parametrize("kind", ["sync", "async"])


@both
def test_an_idempotent_call_is_retried_with_growing_waits_until_the_server_recovers(kind):
    with scripted_server() as s:
        s.then(503, DOWN)
        s.then(502, b"bad gateway", "text/plain")
        s.answer(200, CLASSIFICATION)
        c = call(kind, s.url, "classify_task", "fix the build")
        times = list(s.times)
    assert c.category == "coding"
    assert len(times) == 3
    first, second = times[1] - times[0], times[2] - times[1]
    # The n-th retry waits between half and all of backoff * 2**(n-1): [0.1, 0.2] s, then [0.2, 0.4] s
    # (the upper bounds leave room for a busy machine; the lower ones are exact).
    assert 0.1 <= first < 0.2 + 1.0, first
    assert 0.2 <= second < 0.4 + 1.0, second


@both
def test_retries_stop_after_the_last_attempt_with_the_typed_error(kind):
    with scripted_server() as s:
        s.answer(503, DOWN)
        with pytest.raises(ServiceUnavailableError) as e:
            call(kind, s.url, "route", "hello")
        assert len(s.seen) == 3
    assert isinstance(e.value, ServerError)
    assert (e.value.status, e.value.code, e.value.attempts) == (503, "service_unavailable", 3)


@both
def test_a_429_waits_as_long_as_retry_after_asks(kind):
    with scripted_server() as s:
        s.then(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, headers={"retry-after": "1"})
        s.answer(200, CLASSIFICATION)
        assert call(kind, s.url, "classify_task", "hi").category == "coding"
        waited = s.times[1] - s.times[0]
    assert waited >= 1.0, waited


@both
def test_a_4xx_other_than_429_is_not_retried(kind):
    with scripted_server() as s:
        s.answer(400, {"error": {"message": "no", "type": "invalid_request_error"}})
        with pytest.raises(BadRequestError) as e:
            call(kind, s.url, "classify_task", "hi")
        assert len(s.seen) == 1 and e.value.attempts == 1


@both
def test_agent_messages_are_never_retried(kind):
    with scripted_server() as s:
        s.answer(503, DOWN)
        with pytest.raises(ServiceUnavailableError):
            call(kind, s.url, "format_agent_message", "restart payments")
        assert len(s.seen) == 1


@both
def test_analyze_is_retried_only_when_a_retry_cannot_count_twice(kind):
    with scripted_server() as s:
        s.answer(500, {"error": {"message": "boom", "type": "internal_error"}})
        for kwargs, sent in (({}, 3), ({"conversation": "c-1"}, 1), ({"conversation": "c-1", "message_id": "m-1"}, 3)):
            s.seen.clear()
            with pytest.raises(ServerError):
                call(kind, s.url, "analyze", "hello", **kwargs)
            assert len(s.seen) == sent, kwargs
            # Every retry is the same request: the same message id, so the server sees one turn.
            assert all(r.body == s.seen[0].body for r in s.seen)


@both
def test_connection_failures_are_retried_then_raised(kind):
    with pytest.raises(APIConnectionError) as e:
        call(kind, f"http://127.0.0.1:{free_port()}", "select_model", "chat")
    assert e.value.type == "connection_error" and e.value.attempts == 3


@both
def test_retry_none_sends_once(kind):
    with scripted_server() as s:
        s.answer(429, {"error": {"message": "slow down", "type": "rate_limit_error"}})
        with pytest.raises(RateLimitError):
            call(kind, s.url, "classify_task", "hi", retry=None)
        assert len(s.seen) == 1


def test_backoff_is_exponential_capped_and_jittered():
    r = Retry(attempts=10, backoff=0.5, max_backoff=3.0)
    rng = random.Random(7)
    for retry, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (8, 3.0)):
        waits = [r.delay(retry, rng, None) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (retry, min(waits), max(waits))
        assert max(waits) - min(waits) > ceiling / 4  # jitter: not one fixed wait
    assert r.delay(1, rng, 2.5) == 2.5  # Retry-After when longer
    assert r.delay(1, rng, 60) == 3.0  # ... capped
    with pytest.raises(ValueError):
        Retry(attempts=0)
