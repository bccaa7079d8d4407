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

RESPONSES_WEATHER_TOOL = {"type": "function", **WEATHER_TOOL["function"]}  # the flat Responses shape


def test_responses_through_auto_with_the_routing_headers(client: OpenAI):
    raw = client.responses.with_raw_response.create(
        model="auto", input="Say hello.", instructions="Be brief.", max_output_tokens=8, temperature=0,
        metadata={"ticket": "t-1"})
    assert raw.status_code == 200
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.model in ANSWER_MODELS
    check_routing_headers(raw.headers, model=response.model, routed=True)
    assert response.status in ("completed", "incomplete")
    assert [item.type for item in response.output] == ["message"]
    assert isinstance(response.output_text, str)
    assert 0 < response.usage.output_tokens <= 8 and response.usage.input_tokens > 0
    assert response.metadata == {"ticket": "t-1"} and response.instructions == "Be brief."


def test_responses_streaming_assembles_to_the_non_streaming_answer(client: OpenAI):
    args = dict(model="big", input="Say hello.", max_output_tokens=8, temperature=0)
    whole = client.responses.create(**args)
    events = list(client.responses.create(**args, stream=True))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-1] == "response." + whole.status
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == whole.output_text  # greedy decoding: the same tokens either way
    # The SDK's helper checks the events' order and ids as it rebuilds the response (its
    # get_final_response() wants response.completed; 8 tokens of random weights end incomplete).
    with client.responses.stream(**args) as stream:
        last = list(stream)[-1]
    assert last.type == "response." + whole.status
    assert last.response.output[0].content[0].text == whole.output_text
    assert last.response.usage.output_tokens == whole.usage.output_tokens


def test_responses_tools_route_to_the_tools_capable_model(client: OpenAI):
    raw = client.responses.with_raw_response.create(
        model="auto", input="What is the weather in Paris?", tools=[RESPONSES_WEATHER_TOOL],
        max_output_tokens=16, temperature=0)
    response = raw.parse()
    assert response.model == "big"  # "spare" has no tools capability
    check_routing_headers(raw.headers, model="big", routed=True)
    assert response.tools[0].name == "get_weather"
    for item in response.output:
        assert item.type in ("message", "function_call")
        if item.type == "function_call":
            assert item.name == "get_weather" and isinstance(item.arguments, str)


def test_responses_refuse_the_internal_model_and_stored_state(client: OpenAI):
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.responses.create(model=INTERNAL_NAME, input="hi")
    assert e.value.status_code == 403 and e.value.type == "internal_model_forbidden"
    # tinyroute keeps no responses: the field is named, never ignored.
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="big", input="hi", previous_response_id="resp_123")
    assert "previous_response_id" in e.value.message


# ---- Embeddings (client.embeddings) ------------------------------------------------------------------


def test_embeddings_in_floats_and_in_the_sdks_default_base64(client: OpenAI):
    texts = ["first text", "second, longer text"]
    raw = client.embeddings.with_raw_response.create(model="embedder", input=texts)  # base64, decoded
    decoded = raw.parse()
    assert raw.headers["x-tinyroute-model"] == "embedder"
    floats = client.embeddings.create(model="embedder", input=texts, encoding_format="float")
    assert [d.index for d in decoded.data] == [0, 1] and decoded.usage.prompt_tokens > 0
    for a, b in zip(decoded.data, floats.data):
        assert len(a.embedding) == len(b.embedding) > 0
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) < 1e-6
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model=INTERNAL_NAME, input="hi")
