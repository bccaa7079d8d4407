"""The one exception the client raises for anything the server or the network did wrong."""

from __future__ import annotations

from typing import Any, Optional


class TinyrouteError(Exception):
    """A request to tinyroute failed.

    status: the HTTP status, or None when no answer came (timeout, connection refused).
    type:   the server's error type (e.g. "invalid_request_error"), or "timeout",
            "connection_error", "transport_error", "invalid_response" for client-side failures.
    message: what the server said (or what went wrong on the way), meant for a person.
    body:   the parsed JSON error body when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        type: Optional[str] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.body = body

    def __str__(self) -> str:
        head = "tinyroute"
        if self.status is not None:
            head += f" {self.status}"
        if self.type:
            head += f" {self.type}"
        return f"{head}: {self.message}"

    def __repr__(self) -> str:
        return f"TinyrouteError(status={self.status!r}, type={self.type!r}, message={self.message!r})"


def error_from_response(status: int, reason: str, text: str, parsed: Any) -> TinyrouteError:
    """Reads OpenAI-style {"error": {"message", "type"}} (also Anthropic's, which nests the same way)
    and Ollama-style {"error": "message"} bodies; anything else keeps the raw text."""
    if isinstance(parsed, dict) and "error" in parsed:
        err = parsed["error"]
        if isinstance(err, dict):
            message = err.get("message")
            kind = err.get("type") or err.get("code")
            return TinyrouteError(
                str(message) if message is not None else f"HTTP {status} {reason}".strip(),
                status=status,
                type=str(kind) if kind is not None else None,
                body=parsed,
            )
        if isinstance(err, str):
            return TinyrouteError(err, status=status, body=parsed)
    snippet = text.strip()
    if len(snippet) > 500:
        snippet = snippet[:500] + "..."
    return TinyrouteError(snippet or f"HTTP {status} {reason}".strip(), status=status, body=parsed)
