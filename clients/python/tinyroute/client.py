"""The clients for tinyroute's routing API: `Client` (sync) and `TinyrouteClient` (async, also exported
as `AsyncClient`). Both are thin transports over one implementation (_core): each method names the
Call that _core builds and runs it; validation, request bodies, parsing, errors and retries live there.

They ask the internal model to decide things (a category, an agent, envelope fields, metadata) and never
to write an answer: there is deliberately no generate/chat/synthesize method. Answers come from the large
models, through tinyroute's gateway (/v1/chat/completions, /v1/messages, /api/chat) with any OpenAI,
Anthropic or Ollama client.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, Mapping, Optional, Sequence, TypeVar, Union, cast

import httpx

from . import _core
from ._core import DEFAULT_BASE_URL, PRIORITIES, UNSET, Call, PriorityArg, Retry, Sleep
from .models import AgentMessage, AgentRoute, Analysis, Classification, Metadata, Route, Selection

T = TypeVar("T")
Prompt = Union[str, Sequence[Mapping[str, Any]]]

__all__ = ["DEFAULT_BASE_URL", "PRIORITIES", "AsyncClient", "Client", "Retry", "TinyrouteClient"]

_DOC = """
    base_url: where `tinyroute serve` listens. timeout: seconds for one exchange (connect, send, wait,
    read); a slow answer raises APITimeoutError. api_key: sent as "Authorization: Bearer KEY" (for a
    gateway with `gateway.api_keys`). priority ("high" | "medium" | "low"): sent as X-Request-Priority on
    every request; each method can override it (None: send none). headers: extra headers on every
    request. retry: how idempotent calls are retried on 429/5xx/connection failures (Retry(); None: never).
    Failures raise TinyrouteError subclasses; invalid arguments raise ValueError/TypeError before anything
    is sent.
"""


def _overrides(from_: Optional[str], to: Optional[str], reply_to: Optional[str], correlation_id: Optional[str],
               hop_count: Optional[int]) -> Dict[str, Any]:
    return {"from": from_, "to": to, "reply_to": reply_to, "correlation_id": correlation_id,
            "hop_count": hop_count}


class Client:
    __doc__ = """A synchronous client.

        with Client("http://127.0.0.1:8080", priority="high") as tr:
            c = tr.classify_task("Напиши функцию на Rust")
            s = tr.select_model(c.category, needs_tools=True)
    """ + _DOC

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 30.0, api_key: Optional[str] = None,
                 priority: PriorityArg = None, headers: Optional[Mapping[str, str]] = None,
                 retry: Optional[Retry] = Retry()) -> None:
        self._s = _core.Session.make(base_url, timeout, api_key, priority, headers, retry)
        self._http = httpx.Client(base_url=self._s.base_url, timeout=self._s.timeout, headers=self._s.headers)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def classify_task(self, prompt: str, *, priority: PriorityArg = UNSET) -> Classification:
        """The task category of `prompt` (any language), with the full distribution."""
        return self._run(_core.classify(prompt), priority)

    def select_model(self, task_type: str, *, needs_tools: bool = False, needs_vision: bool = False,
                     needs_reasoning: bool = False, estimated_tokens: int = 0,
                     priority: PriorityArg = UNSET) -> Selection:
        """The answer model for a category and what the request needs (400: unknown category; 503: none)."""
        return self._run(_core.select(task_type, needs_tools, needs_vision, needs_reasoning, estimated_tokens),
                         priority)

    def route(self, prompt: Prompt, *, priority: PriorityArg = UNSET) -> Route:
        """Classification and model selection in one call, exactly as the gateway routes "auto"."""
        return self._run(_core.route(prompt), priority)

    def analyze(self, prompt: Prompt, *, conversation: Optional[str] = None, message_id: Optional[str] = None,
                priority: PriorityArg = UNSET) -> Analysis:
        """Every decision in one pass (category, agent, field decisions, selection), optionally as a turn of
        `conversation`; `message_id` names the turn, so a retry of it is not counted twice."""
        return self._run(_core.analyze(prompt, conversation, message_id), priority)

    def route_agent(self, text: str, *, priority: PriorityArg = UNSET) -> AgentRoute:
        """Which configured agent `text` is for (needs an `agents:` section in the server's config)."""
        return self._run(_core.route_agent(text), priority)

    def format_agent_message(self, data: Union[str, Mapping[str, Any]], *, from_: Optional[str] = None,
                             to: Optional[str] = None, reply_to: Optional[str] = None,
                             correlation_id: Optional[str] = None, hop_count: Optional[int] = None,
                             priority: PriorityArg = UNSET) -> AgentMessage:
        """An agent-message.v1 envelope for free text (str) or a message's own fields (dict). Never retried."""
        return self._run(_core.agent_message(data, _overrides(from_, to, reply_to, correlation_id, hop_count)),
                         priority)

    def extract_metadata(self, text: str, *, priority: PriorityArg = UNSET) -> Metadata:
        """Language, intent, urgency, topics, tool need, complexity and token count of `text`."""
        return self._run(_core.metadata(text), priority)

    def health(self) -> Dict[str, Any]:
        """GET /health as a dict (status, breaker states)."""
        return self._run(_core.health(), None)

    def _run(self, call: Call[T], priority: PriorityArg) -> T:
        headers = self._s.request_headers(priority)
        steps = self._s.exchange(call)
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                outcome: Optional[_core.Outcome] = None
            else:
                try:
                    outcome = self._http.request(call.method, call.path, json=call.body, headers=headers)
                except httpx.HTTPError as e:
                    outcome = e
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return cast(T, done.value)


class TinyrouteClient:
    __doc__ = """An asyncio client (also exported as AsyncClient).

        async with TinyrouteClient("http://127.0.0.1:8080", priority="high") as tr:
            c = await tr.classify_task("Напиши функцию на Rust")
            s = await tr.select_model(c.category, needs_tools=True)
    """ + _DOC

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 30.0, api_key: Optional[str] = None,
                 priority: PriorityArg = None, headers: Optional[Mapping[str, str]] = None,
                 retry: Optional[Retry] = Retry()) -> None:
        self._s = _core.Session.make(base_url, timeout, api_key, priority, headers, retry)
        self._http = httpx.AsyncClient(base_url=self._s.base_url, timeout=self._s.timeout, headers=self._s.headers)

    async def __aenter__(self) -> "TinyrouteClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def classify_task(self, prompt: str, *, priority: PriorityArg = UNSET) -> Classification:
        """See Client.classify_task."""
        return await self._run(_core.classify(prompt), priority)

    async def select_model(self, task_type: str, *, needs_tools: bool = False, needs_vision: bool = False,
                           needs_reasoning: bool = False, estimated_tokens: int = 0,
                           priority: PriorityArg = UNSET) -> Selection:
        """See Client.select_model."""
        return await self._run(
            _core.select(task_type, needs_tools, needs_vision, needs_reasoning, estimated_tokens), priority)

    async def route(self, prompt: Prompt, *, priority: PriorityArg = UNSET) -> Route:
        """See Client.route."""
        return await self._run(_core.route(prompt), priority)

    async def analyze(self, prompt: Prompt, *, conversation: Optional[str] = None,
                      message_id: Optional[str] = None, priority: PriorityArg = UNSET) -> Analysis:
        """See Client.analyze."""
        return await self._run(_core.analyze(prompt, conversation, message_id), priority)

    async def route_agent(self, text: str, *, priority: PriorityArg = UNSET) -> AgentRoute:
        """See Client.route_agent."""
        return await self._run(_core.route_agent(text), priority)

    async def format_agent_message(self, data: Union[str, Mapping[str, Any]], *, from_: Optional[str] = None,
                                   to: Optional[str] = None, reply_to: Optional[str] = None,
                                   correlation_id: Optional[str] = None, hop_count: Optional[int] = None,
                                   priority: PriorityArg = UNSET) -> AgentMessage:
        """See Client.format_agent_message."""
        return await self._run(
            _core.agent_message(data, _overrides(from_, to, reply_to, correlation_id, hop_count)), priority)

    async def extract_metadata(self, text: str, *, priority: PriorityArg = UNSET) -> Metadata:
        """See Client.extract_metadata."""
        return await self._run(_core.metadata(text), priority)

    async def health(self) -> Dict[str, Any]:
        """See Client.health."""
        return await self._run(_core.health(), None)

    async def _run(self, call: Call[T], priority: PriorityArg) -> T:
        headers = self._s.request_headers(priority)
        steps = self._s.exchange(call)
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                outcome: Optional[_core.Outcome] = None
            else:
                try:
                    outcome = await self._http.request(call.method, call.path, json=call.body, headers=headers)
                except httpx.HTTPError as e:
                    outcome = e
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return cast(T, done.value)


AsyncClient = TinyrouteClient
