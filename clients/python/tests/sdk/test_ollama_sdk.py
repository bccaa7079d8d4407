"""The official `ollama` Python client against a real `tinyroute serve` (Ollama front) with real
llama-servers behind it: chat, generate (both streaming), list, show, embed, and the internal model refused.

The ollama client has no raw-response access: its methods return parsed models only. The routing
headers are read from the HTTP responses it receives, through an httpx response hook (the client passes
extra keyword arguments on to its httpx.Client)."""

from __future__ import annotations

from typing import Dict, Iterator, List

import httpx
import pytest
from ollama import Client, ResponseError

from conftest import INTERNAL_NAME, Serve
from routing_headers import ANSWER_MODELS, check_routing_headers

MESSAGES = [{"role": "user", "content": "Say hello."}]
GREEDY = {"num_predict": 8, "temperature": 0, "seed": 7}


class Recorded:
    def __init__(self) -> None:
        self.headers: List[Dict[str, str]] = []

    def __call__(self, response: httpx.Response) -> None:
        self.headers.append(dict(response.headers))


@pytest.fixture
def seen() -> Recorded:
    return Recorded()


@pytest.fixture
def client(gateway: Serve, seen: Recorded) -> Iterator[Client]:
    yield Client(host=gateway.url, timeout=120, event_hooks={"response": [seen]})


def base(name: str) -> str:
    return name.split(":")[0]


def test_chat_through_auto_with_the_routing_headers(client: Client, seen: Recorded):
    r = client.chat(model="auto", messages=MESSAGES, options=GREEDY)
    assert r.done and r.done_reason in ("length", "stop")
    assert r.message.role == "assistant" and isinstance(r.message.content, str)
    assert base(r.model) in ANSWER_MODELS
    assert 0 < r.eval_count <= 8
    check_routing_headers(seen.headers[-1], model=base(r.model), routed=True)


def test_chat_streaming_assembles_to_the_non_streaming_answer(client: Client):
    whole = client.chat(model="big", messages=MESSAGES, options=GREEDY)
    parts = list(client.chat(model="big", messages=MESSAGES, options=GREEDY, stream=True))
    assert len(parts) > 2
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert "".join(p.message.content or "" for p in parts) == whole.message.content  # greedy decoding
    assert parts[-1].done_reason == whole.done_reason and parts[-1].eval_count == whole.eval_count


def test_generate_and_its_stream(client: Client, seen: Recorded):
    whole = client.generate(model="big", prompt="Say hello.", options=GREEDY)
    assert whole.done and isinstance(whole.response, str) and whole.eval_count > 0
    check_routing_headers(seen.headers[-1], model="big", routed=False)
    parts = list(client.generate(model="big", prompt="Say hello.", options=GREEDY, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.response for p in parts) == whole.response


def test_list_and_show(client: Client):
    names = [m.model for m in client.list().models]
    assert {"big", "spare"} <= {base(n) for n in names}, names
    assert not any(INTERNAL_NAME in n.lower() for n in names), names
    big = client.show("big")
    assert "completion" in big.capabilities and "tools" in big.capabilities
    with pytest.raises(ResponseError) as e:
        client.show("missing-model:1b")
    assert e.value.status_code == 404


def test_embed(client: Client, seen: Recorded):
    r = client.embed(model="embedder", input=["hello", "world"])
    assert len(r.embeddings) == 2
    assert len(r.embeddings[0]) == len(r.embeddings[1]) > 0
    assert r.embeddings[0] != r.embeddings[1]
    assert seen.headers[-1]["x-tinyroute-model"] == "embedder"
    again = client.embed(model="embedder", input="hello")
    assert again.embeddings[0] == pytest.approx(r.embeddings[0], abs=1e-4)


def test_the_internal_model_is_refused(client: Client):
    for call in (lambda: client.chat(model=INTERNAL_NAME, messages=MESSAGES),
                 lambda: client.generate(model=INTERNAL_NAME, prompt="hi"),
                 lambda: client.show(INTERNAL_NAME),
                 lambda: client.embed(model=INTERNAL_NAME, input="hi")):
        with pytest.raises(ResponseError) as e:
            call()
        assert e.value.status_code == 403, e.value
        assert "internal" in e.value.error
