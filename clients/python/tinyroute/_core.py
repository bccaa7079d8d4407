"""The one implementation behind both clients, free of I/O: what each call sends (a Call: method, path,
body, how to read the answer, whether it may be retried), how an answer or a transport failure becomes
a result or an exception, and the retry plan. `Client` (sync) and `TinyrouteClient` (async) only move
bytes and sleep: they drive `Session.exchange`, which yields SEND (send the request, give me the
httpx.Response or the httpx.HTTPError) or Sleep(seconds) (back off, then send again).

Retries: only idempotent calls are retried, on 429, 500, 502, 503, 504 and on connection failures and
timeouts, with exponential backoff and jitter (Retry). What is idempotent:
  classify_task, select_model, route, route_agent, extract_metadata, health: pure decisions, no state.
  analyze: when it names no conversation, or names the message (message_id): the server counts a
           conversation's turns, and a retry of a named message is recognised as the same turn.
  format_agent_message: never retried. The server makes a fresh envelope (a new id) for each call and
           reads no idempotency key, so a retry is not the same request; the caller decides.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generator, Generic, Mapping, Optional, Sequence, Tuple, TypeVar, Union, cast

import httpx

from .errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidResponseError,
    RateLimitError,
    ServerError,
    TinyrouteError,
    error_from_response,
)
from .models import AgentMessage, AgentRoute, Analysis, Classification, Metadata, Route, Selection

T = TypeVar("T")
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
PRIORITIES = ("high", "medium", "low")  # X-Request-Priority, as tinyroute reads it


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "the client's default priority", as opposed to None ("send none")
PriorityArg = Optional[str]


def check_priority(priority: PriorityArg) -> PriorityArg:
    if priority is not None and priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)} or None, not {priority!r}")
    return priority


# ---- what each call sends ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    body: Optional[Dict[str, Any]]
    parse: Callable[[Any], T]
    idempotent: bool


def _require_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _messages(prompt: Union[str, Sequence[Mapping[str, Any]]]) -> Any:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt):
        return [dict(cast(Mapping[str, Any], m)) for m in prompt]
    raise TypeError("prompt must be a str or a sequence of message dicts")


def _dict(data: Any) -> Dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidResponseError("unexpected response from tinyroute: not a JSON object",
                                   type="invalid_response", body=data)
    return data


def classify(prompt: str) -> Call[Classification]:
    return Call("POST", "/v1/classify", {"text": _require_str(prompt, "prompt")}, Classification.from_json, True)


def select(task_type: str, needs_tools: bool, needs_vision: bool, needs_reasoning: bool,
           estimated_tokens: int) -> Call[Selection]:
    _require_str(task_type, "task_type")
    if isinstance(estimated_tokens, bool) or not isinstance(estimated_tokens, int) or estimated_tokens < 0:
        raise ValueError("estimated_tokens must be a non-negative int")
    body = {
        "category": task_type,
        "needs_tools": bool(needs_tools),
        "needs_vision": bool(needs_vision),
        "needs_reasoning": bool(needs_reasoning),
        "estimated_tokens": estimated_tokens,
    }
    return Call("POST", "/v1/select", body, Selection.from_json, True)


def route(prompt: Union[str, Sequence[Mapping[str, Any]]]) -> Call[Route]:
    return Call("POST", "/v1/route", {"messages": _messages(prompt)}, Route.from_json, True)


def analyze(prompt: Union[str, Sequence[Mapping[str, Any]]], conversation: Optional[str],
            message_id: Optional[str]) -> Call[Analysis]:
    body: Dict[str, Any] = {"messages": _messages(prompt)}
    if conversation is not None:
        body["conversation"] = _require_str(conversation, "conversation")
    if message_id is not None:
        body["message_id"] = _require_str(message_id, "message_id")
    return Call("POST", "/v1/analyze", body, Analysis.from_json, conversation is None or message_id is not None)


def route_agent(text: str) -> Call[AgentRoute]:
    return Call("POST", "/v1/agents/route", {"text": _require_str(text, "text")}, AgentRoute.from_json, True)


def agent_message(data: Union[str, Mapping[str, Any]], overrides: Mapping[str, Any]) -> Call[AgentMessage]:
    if isinstance(data, str):
        body: Dict[str, Any] = {"text": data}
    elif isinstance(data, Mapping):
        body = dict(data)
    else:
        raise TypeError("data must be a str or a dict")
    body.update({k: v for k, v in overrides.items() if v is not None})
    return Call("POST", "/v1/agents/messages", body, AgentMessage.from_json, False)


def metadata(text: str) -> Call[Metadata]:
    return Call("POST", "/v1/metadata", {"text": _require_str(text, "text")}, Metadata.from_json, True)


def health() -> Call[Dict[str, Any]]:
    return Call("GET", "/health", None, _dict, True)


# ---- retries ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """Retries of idempotent calls. attempts: tries in all (1 = no retry). The n-th retry waits
    min(max_backoff, backoff * 2**(n-1)) seconds, of which the upper half is random (jitter), or what the
    server's Retry-After asks for when that is longer (capped at max_backoff)."""

    attempts: int = 3
    backoff: float = 0.25
    max_backoff: float = 8.0
    statuses: Tuple[int, ...] = (429, 500, 502, 503, 504)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("Retry needs attempts >= 1 and non-negative backoff and max_backoff")

    def delay(self, retry: int, rng: random.Random, retry_after: Optional[float]) -> float:
        ceiling: float = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        wait: float = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff))
        return wait

    def retries(self, error: TinyrouteError) -> bool:
        if isinstance(error, (RateLimitError, ServerError)):
            return error.status in self.statuses
        return isinstance(error, APIConnectionError)


NO_RETRY = Retry(attempts=1)


@dataclass(frozen=True)
class Sleep:
    seconds: float


SEND = "send"
Outcome = Union[httpx.Response, httpx.HTTPError]
Steps = Generator[Union[str, Sleep], Optional[Outcome], T]


def _retry_after(outcome: Optional[Outcome]) -> Optional[float]:
    if not isinstance(outcome, httpx.Response):
        return None
    value: str = outcome.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# ---- the session: settings shared by both clients ---------------------------------------------------


@dataclass
class Session:
    base_url: str
    timeout: float
    priority: PriorityArg
    retry: Retry
    headers: Dict[str, str]
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def make(cls, base_url: str, timeout: float, api_key: Optional[str], priority: PriorityArg,
             headers: Optional[Mapping[str, str]], retry: Optional[Retry]) -> "Session":
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        sent: Dict[str, str] = {"accept": "application/json"}
        if headers:
            sent.update(headers)
        if api_key:
            sent["authorization"] = f"Bearer {api_key}"
        return cls(base_url.rstrip("/"), float(timeout), check_priority(priority), retry or NO_RETRY, sent)

    def request_headers(self, priority: PriorityArg) -> Dict[str, str]:
        """The per-request headers: X-Request-Priority, the client's unless the call overrides it."""
        chosen = self.priority if priority is UNSET else check_priority(priority)
        return {"x-request-priority": chosen} if chosen else {}

    def exchange(self, call: Call[T]) -> Steps[T]:
        """Sends (yield SEND) until the answer is a result or a failure not worth retrying."""
        attempt = 1
        while True:
            outcome = yield SEND
            assert outcome is not None
            try:
                return self.finish(call, outcome)
            except TinyrouteError as e:
                e.attempts = attempt
                if not (call.idempotent and attempt < self.retry.attempts and self.retry.retries(e)):
                    raise
                yield Sleep(self.retry.delay(attempt, self.rng, _retry_after(outcome)))
                attempt += 1

    def finish(self, call: Call[T], outcome: Outcome) -> T:
        where = f"{call.method} {self.base_url}{call.path}"
        if isinstance(outcome, httpx.TimeoutException):
            raise APITimeoutError(
                f"{where}: no answer within {self.timeout:g} s ({type(outcome).__name__}); raise the client's "
                "timeout or check the server's queue",
                type="timeout",
            ) from outcome
        if isinstance(outcome, httpx.ConnectError):
            raise APIConnectionError(
                f"cannot connect to tinyroute at {self.base_url} ({str(outcome) or type(outcome).__name__}); "
                "is `tinyroute serve` running there?",
                type="connection_error",
            ) from outcome
        if isinstance(outcome, httpx.HTTPError):
            raise APIConnectionError(
                f"{where} failed: {str(outcome) or type(outcome).__name__}", type="transport_error"
            ) from outcome
        try:
            parsed: Any = outcome.json()
        except ValueError:
            parsed = None
        if outcome.status_code >= 400:
            raise error_from_response(outcome.status_code, outcome.reason_phrase, outcome.text, parsed)
        if parsed is None:
            raise InvalidResponseError(
                f"{where} answered {outcome.status_code} without a JSON body",
                status=outcome.status_code,
                type="invalid_response",
            )
        return call.parse(parsed)
