"""The official `anthropic` SDK against a real `tinyroute serve` (Anthropic Messages front) with real
llama-servers behind it: messages, streaming, tools, the internal model refused with the protocol's own
403, and the routing headers read through `with_raw_response`."""

from __future__ import annotations

from typing import Iterator

import anthropic
import pytest
from anthropic import Anthropic

from conftest import INTERNAL_NAME, Serve
from routing_headers import ANSWER_MODELS, check_routing_headers

MESSAGES = [{"role": "user", "content": "Say hello."}]
# This SDK version has no `temperature` argument; tinyroute's Messages front still reads the field.
GREEDY = {"extra_body": {"temperature": 0}}


@pytest.fixture
def client(gateway: Serve) -> Iterator[Anthropic]:
    with Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def test_messages_through_auto_with_the_routing_headers(client: Anthropic):
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=8, system="Be brief.", messages=MESSAGES, **GREEDY)
    assert raw.status_code == 200
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model in ANSWER_MODELS
    check_routing_headers(raw.headers, model=message.model, routed=True)
    assert message.stop_reason in ("max_tokens", "end_turn")
    assert all(block.type == "text" for block in message.content)
    assert 0 < message.usage.output_tokens <= 8


def test_streaming_assembles_to_the_non_streaming_answer(client: Anthropic):
    args = dict(model="big", max_tokens=8, messages=MESSAGES, **GREEDY)
    whole = client.messages.create(**args)
    with client.messages.stream(**args) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    for kind in ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
                 "message_delta", "message_stop"):
        assert kind in events, (kind, events)
    assert events[0] == "message_start" and events[-1] == "message_stop"
    text = "".join(b.text for b in final.content if b.type == "text")
    assert text == "".join(b.text for b in whole.content if b.type == "text")  # greedy: the same tokens
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_tools_route_to_the_tools_capable_model(client: Anthropic):
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=16, **GREEDY,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[{"name": "get_weather", "description": "The weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}])
    message = raw.parse()
    assert message.model == "big"  # "spare" has no tools capability
    check_routing_headers(raw.headers, model="big", routed=True)
    assert message.stop_reason in ("max_tokens", "end_turn", "tool_use")
    for block in message.content:
        assert block.type in ("text", "tool_use")
        if block.type == "tool_use":
            assert block.name == "get_weather" and isinstance(block.input, dict)


def test_an_unknown_model_is_the_sdks_not_found_error(client: Anthropic):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="no-such-model", max_tokens=4, messages=MESSAGES)
    assert e.value.status_code == 404
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "model_not_found"


def test_the_internal_model_is_refused(client: Anthropic):
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        client.messages.create(model=INTERNAL_NAME, max_tokens=4, messages=MESSAGES)
    assert e.value.status_code == 403
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "internal_model_forbidden"
    assert "internal-only" in e.value.body["error"]["message"]


def test_count_tokens_is_what_the_model_then_reads(client: Anthropic):
    # "big" is a llama-server: it counts with the model's own chat template and tokenizer.
    raw = client.messages.with_raw_response.count_tokens(model="big", system="Be brief.", messages=MESSAGES)
    assert raw.headers["x-tinyroute-token-count"] == "backend-tokenizer"
    assert raw.headers["x-tinyroute-model"] == "big"
    counted = raw.parse().input_tokens
    answered = client.messages.create(model="big", max_tokens=1, system="Be brief.", messages=MESSAGES)
    assert counted == answered.usage.input_tokens > 0

