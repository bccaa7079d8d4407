"""Failures as TinyrouteError: server errors in OpenAI and Ollama shapes, non-JSON answers, timeouts,
refused connections, authentication against a real gateway with API keys, and the headers sent."""

from __future__ import annotations

import asyncio

import pytest

from conftest import config_yaml, free_port, scripted_server, silent_server, start_serve
from tinyroute import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    ServiceUnavailableError,
    TinyrouteClient,
    TinyrouteError,
)

CLASSIFICATION = {
    "category": "coding", "top_label": "coding", "confidence": 0.7, "uncertain": False, "source": "model",
    "strategy": "choice", "distribution": [{"label": "coding", "prob": 0.7}, {"label": "chat", "prob": 0.3}],
    "query_tokens": 5, "truncated": False, "tokens_decoded": 6, "latency_ms": 1.5,
}


def run(coro):
    return asyncio.run(coro)


async def failure(url: str, timeout: float = 5, call=lambda tr: tr.classify_task("hi")) -> TinyrouteError:
    async with TinyrouteClient(url, timeout=timeout) as tr:
        with pytest.raises(TinyrouteError) as e:
            await call(tr)
    return e.value


def test_server_down_is_a_connection_error():
    e = run(failure(f"http://127.0.0.1:{free_port()}"))
    assert type(e) is APIConnectionError
    assert e.status is None and e.type == "connection_error"
    assert "cannot connect" in e.message and "tinyroute serve" in e.message


def test_no_answer_within_the_timeout_is_a_timeout_error():
    with silent_server() as url:
        e = run(failure(url, timeout=0.5))
    assert isinstance(e, APITimeoutError) and isinstance(e, APIConnectionError)
    assert e.status is None and e.type == "timeout"
    assert "no answer within 0.5 s" in e.message


def test_openai_style_error_body():
    with scripted_server() as s:
        s.answer(429, {"error": {"message": "slow down", "type": "rate_limit_error", "code": None}})
        e = run(failure(s.url))
    assert isinstance(e, RateLimitError)
    assert (e.status, e.type, e.code, e.message) == (429, "rate_limit_error", "rate_limit_error", "slow down")
    assert e.body["error"]["message"] == "slow down"


@pytest.mark.parametrize("status, cls", [
    (400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError),
    (413, RequestTooLargeError), (409, APIStatusError), (500, ServerError), (504, ServerError),
    (503, ServiceUnavailableError),
])
def test_each_status_is_its_own_exception_carrying_the_error_code(status, cls):
    with scripted_server() as s:
        s.answer(status, {"error": {"message": "m", "type": "some_type", "param": None, "code": "some_code"}})
        e = run(failure(s.url))
    assert type(e) is cls and isinstance(e, APIStatusError) and isinstance(e, TinyrouteError)
    assert (e.status, e.type, e.code, e.message) == (status, "some_type", "some_code", "m")
    assert "some_type" in str(e) and cls.__name__ in repr(e)


def test_ollama_style_error_body():
    with scripted_server() as s:
        s.answer(404, {"error": "model 'tinyllama' not found, try pulling it first"})
        e = run(failure(s.url))
    assert (e.status, e.type) == (404, None)
    assert e.message == "model 'tinyllama' not found, try pulling it first"


def test_non_json_error_keeps_the_text():
    with scripted_server() as s:
        s.answer(502, b"<html>Bad Gateway</html>", "text/html")
        e = run(failure(s.url))
    assert e.status == 502 and "Bad Gateway" in e.message


def test_a_success_without_the_expected_fields_is_an_invalid_response():
    with scripted_server() as s:
        s.answer(200, {"unexpected": True})
        e = run(failure(s.url))
        assert isinstance(e, InvalidResponseError)
        assert e.type == "invalid_response" and "category" in e.message
        s.answer(200, b"not json", "text/plain")
        assert run(failure(s.url)).type == "invalid_response"


def test_headers_priority_and_api_key_are_sent():
    with scripted_server() as s:
        s.answer(200, CLASSIFICATION)

        async def go():
            async with TinyrouteClient(s.url, api_key="k-123", priority="high") as tr:
                c = await tr.classify_task("fix the build")
                await tr.classify_task("later", priority="low")
                await tr.classify_task("whenever", priority=None)
            async with TinyrouteClient(s.url) as plain:
                await plain.classify_task("plain")
            return c

        c = run(go())
        seen = list(s.seen)
    assert c.category == "coding" and c.distribution == {"coding": 0.7, "chat": 0.3}
    assert [r.path for r in seen] == ["/v1/classify"] * 4
    assert [r.body for r in seen] == [{"text": t} for t in ("fix the build", "later", "whenever", "plain")]
    assert [r.headers.get("x-request-priority") for r in seen] == ["high", "low", None, None]
    assert [r.headers.get("authorization") for r in seen] == ["Bearer k-123"] * 3 + [None]
    assert all(r.headers["content-type"] == "application/json" for r in seen)


def test_select_model_sends_the_request_facts():
    with scripted_server() as s:
        s.answer(200, {"model": "big", "fallbacks": [], "reason": "r", "rejected": [{"model": "x", "why": "y"}]})

        async def go():
            async with TinyrouteClient(s.url) as tr:
                return await tr.select_model("coding", needs_tools=True, estimated_tokens=1200)

        sel = run(go())
        body = s.seen[0].body
    assert s.seen[0].path == "/v1/select"
    assert body == {"category": "coding", "needs_tools": True, "needs_vision": False, "needs_reasoning": False,
                    "estimated_tokens": 1200}
    assert sel.rejected[0].model == "x" and sel.rejected[0].why == "y"


def test_api_key_against_a_real_gateway(paths, model, tmp_path):
    yaml = config_yaml(model, free_port(), "gateway:\n  api_keys:\n    - {key_env: TR_PY_KEY, models: [\"*\"]}\n")
    serve = start_serve(paths, tmp_path, yaml, env={"TR_PY_KEY": "py-s3cret"})
    try:
        async def go(key):
            async with TinyrouteClient(serve.url, api_key=key, timeout=60) as tr:
                return await tr.select_model("chat")

        for key in (None, "wrong"):
            with pytest.raises(TinyrouteError) as e:
                run(go(key))
            assert e.value.status == 401 and e.value.type == "authentication_error"
        assert run(go("py-s3cret")).model == "big"
    finally:
        rc = serve.stop()
    assert rc == 0, serve.log_text()
    assert "py-s3cret" not in serve.log_text()
