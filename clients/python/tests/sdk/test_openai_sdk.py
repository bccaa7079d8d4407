"""The official `openai` SDK against a real `tinyroute serve` with real llama-servers behind it: chat,
streaming, tools, the model list, typed 4xx errors, the internal model refused, and the routing headers
read through `with_raw_response`. Random weights: the mechanism is checked, never the text's quality."""

from __future__ import annotations

from typing import Iterator

import openai
import pytest
from openai import OpenAI

from conftest import INTERNAL_NAME, Serve
from routing_headers import ANSWER_MODELS, check_routing_headers

MESSAGES = [{"role": "user", "content": "Say hello."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def client(gateway: Serve) -> Iterator[OpenAI]:
    with OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def test_chat_through_auto_with_the_routing_headers(client: OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=MESSAGES, max_tokens=8, temperature=0)
    assert raw.status_code == 200
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model in ANSWER_MODELS
    check_routing_headers(raw.headers, model=completion.model, routed=True)
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("length", "stop")
    assert 0 < completion.usage.completion_tokens <= 8


def test_streaming_assembles_to_the_non_streaming_answer(client: OpenAI):
    args = dict(model="big", messages=MESSAGES, max_tokens=8, temperature=0, seed=7)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    assert len(chunks) > 2
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [c.usage for c in chunks if c.usage]
    assert all(c.object == "chat.completion.chunk" and c.model == "big" for c in chunks)
    assert text == whole.choices[0].message.content  # greedy decoding: the same tokens either way
    assert finish == [whole.choices[0].finish_reason]
    assert len(usage) == 1 and usage[0].completion_tokens == whole.usage.completion_tokens


def test_tools_route_to_the_tools_capable_model(client: OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL], max_tokens=16, temperature=0)
    completion = raw.parse()
    # "spare" has no tools capability: the router must pick "big" for a request that carries tools.
    assert completion.model == "big"
    check_routing_headers(raw.headers, model="big", routed=True)
    choice = completion.choices[0]
    assert choice.finish_reason in ("length", "stop", "tool_calls")
    for call in choice.message.tool_calls or []:
        assert call.type == "function" and call.function.name == "get_weather"
        assert isinstance(call.function.arguments, str)


def test_models_list_has_the_answer_models_and_never_the_internal_one(client: OpenAI):
    ids = [m.id for m in client.models.list()]
    assert {"big", "spare"} <= set(ids)
    assert not any(INTERNAL_NAME in i.lower() for i in ids), ids


def test_an_unknown_model_is_the_sdks_not_found_error(client: OpenAI):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=4)
    assert e.value.status_code == 404
    assert e.value.type == "model_not_found"
    assert "no-such-model" in e.value.message and "big" in e.value.message


def test_a_bad_request_is_the_sdks_bad_request_error(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="big", messages=MESSAGES, max_tokens=4,
                                       extra_headers={"X-Request-Priority": "asap"})
    assert e.value.status_code == 400 and e.value.type == "invalid_request_error"
    assert "X-Request-Priority" in e.value.message


def test_the_internal_model_is_refused(client: OpenAI):
    for name in (INTERNAL_NAME, INTERNAL_NAME.upper() + ":latest"):
        with pytest.raises(openai.PermissionDeniedError) as e:
            client.chat.completions.create(model=name, messages=MESSAGES, max_tokens=4)
        assert e.value.status_code == 403 and e.value.type == "internal_model_forbidden"
        assert "internal-only" in e.value.message


# ---- Responses API (client.responses) ---------------------------------------------------------------
# tinyroute does not serve /v1/responses yet (its own issue). Its SDK tests go here when it does:
# create, streaming events, tools, the internal model refused, the routing headers via with_raw_response.
