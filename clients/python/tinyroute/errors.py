"""The exceptions the client raises: one base class, TinyrouteError, and a subclass per kind of failure,
so callers can catch exactly what they handle (`except RateLimitError`) or everything (`except
TinyrouteError`)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class TinyrouteError(Exception):
    """A request to tinyroute failed.

    status:  the HTTP status, or None when no answer came (timeout, connection refused).
    type:    the server's error type (e.g. "invalid_request_error"), or "timeout", "connection_error",
             "transport_error", "invalid_response" for client-side failures.
    code:    tinyroute's error code from the JSON error body ("code", else "type"), e.g.
             "model_not_found", "internal_model_forbidden"; None when the body had none.
    message: what the server said (or what went wrong on the way), meant for a person.
    body:    the parsed JSON error body when there was one.
    attempts: how many times the request was sent (more than 1 after retries).
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        type: Optional[str] = None,
        code: Optional[str] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.body = body
        self.attempts = 1

    def __str__(self) -> str:
        head = "tinyroute"
        if self.status is not None:
            head += f" {self.status}"
        if self.type:
            head += f" {self.type}"
        return f"{head}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, type={self.type!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class APIStatusError(TinyrouteError):
    """The server answered with an HTTP error status (4xx/5xx)."""


class BadRequestError(APIStatusError):
    """400: the request was invalid (an unknown category, a bad priority, too many hops, ...)."""


class AuthenticationError(APIStatusError):
    """401: no API key, or a wrong one."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this, or the internal model was named."""


class NotFoundError(APIStatusError):
    """404: no such endpoint or model."""


class RequestTooLargeError(APIStatusError):
    """413: the body or its text is over a limit: the server's, or every candidate model's context
    window (code "context_length_exceeded")."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried with backoff for idempotent calls."""


class ServerError(APIStatusError):
    """5xx: the server (or a model behind it) failed; retried with backoff for idempotent calls."""


class ServiceUnavailableError(ServerError):
    """503: nothing can serve this now (e.g. no model able to take the request, the model warming up)."""


class APIConnectionError(TinyrouteError):
    """No answer: the connection failed or broke (type "connection_error" or "transport_error")."""


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout (type "timeout")."""


class InvalidResponseError(TinyrouteError):
    """The server answered 2xx with something the client cannot read (type "invalid_response")."""


_BY_STATUS: Dict[int, Type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def status_error_class(status: int) -> Type[APIStatusError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else APIStatusError


def error_from_response(status: int, reason: str, text: str, parsed: Any) -> APIStatusError:
    """Reads OpenAI-style {"error": {"message", "type", "code"}} (also Anthropic's, which nests the same
    way) and Ollama-style {"error": "message"} bodies; anything else keeps the raw text."""
    cls = status_error_class(status)
    if isinstance(parsed, dict) and "error" in parsed:
        err = parsed["error"]
        if isinstance(err, dict):
            message = err.get("message")
            kind = err.get("type") or err.get("code")
            code = err.get("code") or err.get("type")
            return cls(
                str(message) if message is not None else f"HTTP {status} {reason}".strip(),
                status=status,
                type=str(kind) if kind is not None else None,
                code=str(code) if code is not None else None,
                body=parsed,
            )
        if isinstance(err, str):
            return cls(err, status=status, body=parsed)
    snippet = text.strip()
    if len(snippet) > 500:
        snippet = snippet[:500] + "..."
    return cls(snippet or f"HTTP {status} {reason}".strip(), status=status, body=parsed)
