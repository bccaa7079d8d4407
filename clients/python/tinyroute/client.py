"""The async client for tinyroute's routing API.

It asks the internal model to decide things (a category, an agent, envelope fields, metadata) and
never to write an answer: there is deliberately no generate/chat/synthesize method. Answers come from
the large models, through tinyroute's gateway (/v1/chat/completions, /v1/messages, /api/chat) with any
OpenAI, Anthropic or Ollama client.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Union

import httpx

from .errors import TinyrouteError, error_from_response
from .models import AgentMessage, AgentRoute, Classification, Metadata, Route, Selection

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
PRIORITIES = ("high", "medium", "low")
_UNSET: Any = object()


def _check_priority(priority: Optional[str]) -> Optional[str]:
    if priority is not None and priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)} or None, not {priority!r}")
    return priority


class TinyrouteClient:
    """Talks to `tinyroute serve`.

        async with TinyrouteClient("http://127.0.0.1:8080", api_key=..., priority="high") as tr:
            c = await tr.classify_task("Напиши функцию на Rust")
            s = await tr.select_model(c.category, needs_tools=True)

    timeout: seconds for the whole exchange (connect, send, wait, read); a slow answer raises
    TinyrouteError(type="timeout"). api_key is sent as "Authorization: Bearer KEY" (for a gateway with
    `gateway.api_keys`). priority ("high" | "medium" | "low") is sent as X-Request-Priority on every
    request; each method can override it. Server errors, timeouts and connection failures all raise
    TinyrouteError; invalid arguments raise ValueError/TypeError before anything is sent.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        api_key: Optional[str] = None,
        priority: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.priority = _check_priority(priority)
        sent: Dict[str, str] = {"accept": "application/json"}
        if headers:
            sent.update(headers)
        if api_key:
            sent["authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=sent)

    async def __aenter__(self) -> "TinyrouteClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    # ---- the routing API ---------------------------------------------------------------------------

    async def classify_task(self, prompt: str, *, priority: Optional[str] = _UNSET) -> Classification:
        """The task category of `prompt` (any language), with the full distribution."""
        _require_str(prompt, "prompt")
        return Classification.from_json(await self._post("/v1/classify", {"text": prompt}, priority))

    async def select_model(
        self,
        task_type: str,
        *,
        needs_tools: bool = False,
        needs_vision: bool = False,
        needs_reasoning: bool = False,
        estimated_tokens: int = 0,
        priority: Optional[str] = _UNSET,
    ) -> Selection:
        """The answer model for a category (`task_type`) and what the request needs. An unknown category
        raises TinyrouteError with status 400 (its message lists the configured ones); no model able to
        serve it, 503."""
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
        return Selection.from_json(await self._post("/v1/select", body, priority))

    async def route(
        self, prompt: Union[str, Sequence[Mapping[str, Any]]], *, priority: Optional[str] = _UNSET
    ) -> Route:
        """Classification and model selection in one call, exactly as the gateway routes "auto".
        `prompt` is the user's text, or a chat history (OpenAI-style messages; the last user turn is
        classified, tools and images in it shape the selection)."""
        if isinstance(prompt, str):
            messages: Any = [{"role": "user", "content": prompt}]
        elif isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt):
            messages = [dict(m) for m in prompt]
        else:
            raise TypeError("prompt must be a str or a sequence of message dicts")
        return Route.from_json(await self._post("/v1/route", {"messages": messages}, priority))

    async def route_agent(self, text: str, *, priority: Optional[str] = _UNSET) -> AgentRoute:
        """Which configured agent `text` is for (needs an `agents:` section in the server's config)."""
        _require_str(text, "text")
        return AgentRoute.from_json(await self._post("/v1/agents/route", {"text": text}, priority))

    async def format_agent_message(
        self,
        data: Union[str, Mapping[str, Any]],
        *,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        reply_to: Optional[str] = None,
        correlation_id: Optional[str] = None,
        hop_count: Optional[int] = None,
        priority: Optional[str] = _UNSET,
    ) -> AgentMessage:
        """An agent-message.v1 envelope for free text (str) or a message's own JSON fields (dict). The
        keyword arguments override what the model or the data would choose; `to` is the only way to
        name the recipient (a "to" inside `data` is ignored by the server)."""
        if isinstance(data, str):
            body: Dict[str, Any] = {"text": data}
        elif isinstance(data, Mapping):
            body = dict(data)
        else:
            raise TypeError("data must be a str or a dict")
        overrides = {
            "from": from_,
            "to": to,
            "reply_to": reply_to,
            "correlation_id": correlation_id,
            "hop_count": hop_count,
        }
        body.update({k: v for k, v in overrides.items() if v is not None})
        return AgentMessage.from_json(await self._post("/v1/agents/messages", body, priority))

    async def extract_metadata(self, text: str, *, priority: Optional[str] = _UNSET) -> Metadata:
        """Language, intent, urgency, topics, tool need, complexity and token count of `text`."""
        _require_str(text, "text")
        return Metadata.from_json(await self._post("/v1/metadata", {"text": text}, priority))

    async def health(self) -> Dict[str, Any]:
        """GET /health as a dict (status, breaker states). Raises TinyrouteError when it is down."""
        data = await self._send("GET", "/health", None, None)
        if not isinstance(data, dict):
            raise TinyrouteError("/health did not answer a JSON object", type="invalid_response", body=data)
        return data

    # ---- transport ---------------------------------------------------------------------------------

    async def _post(self, path: str, body: Dict[str, Any], priority: Optional[str]) -> Any:
        chosen = self.priority if priority is _UNSET else _check_priority(priority)
        return await self._send("POST", path, body, chosen)

    async def _send(self, method: str, path: str, body: Optional[Dict[str, Any]], priority: Optional[str]) -> Any:
        headers = {"x-request-priority": priority} if priority else {}
        url = self.base_url + path
        try:
            response = await self._http.request(method, path, json=body, headers=headers)
        except httpx.TimeoutException as e:
            raise TinyrouteError(
                f"{method} {url}: no answer within {self.timeout:g} s ({type(e).__name__}); raise the client's "
                "timeout or check the server's queue",
                type="timeout",
            ) from e
        except httpx.ConnectError as e:
            raise TinyrouteError(
                f"cannot connect to tinyroute at {self.base_url} ({str(e) or type(e).__name__}); is `tinyroute serve` "
                "running there?",
                type="connection_error",
            ) from e
        except httpx.HTTPError as e:
            raise TinyrouteError(
                f"{method} {url} failed: {str(e) or type(e).__name__}", type="transport_error"
            ) from e
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = None
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.reason_phrase, response.text, parsed)
        if parsed is None:
            raise TinyrouteError(
                f"{method} {url} answered {response.status_code} without a JSON body",
                status=response.status_code,
                type="invalid_response",
            )
        return parsed


def _require_str(value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
