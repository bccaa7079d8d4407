"""tinyroute: sync and async clients for tinyroute's routing API (classification, model selection, the
full analysis, agent routing, agent-message envelopes, metadata). The internal model only decides; it
never writes an answer, so the clients have no generate/chat method."""

from ._core import DEFAULT_BASE_URL, PRIORITIES, Retry
from .client import AsyncClient, Client, TinyrouteClient
from .errors import (
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
    TinyrouteError,
)
from .models import (
    AgentMessage,
    AgentRoute,
    Analysis,
    AnalyzeLatency,
    Classification,
    Conversation,
    Decision,
    Entities,
    Metadata,
    Rejection,
    Route,
    Selection,
)

# The project's version (CMakeLists.txt: project(tinyroute VERSION ...)); pyproject.toml reads it from
# here and tests/test_package.py checks that the two agree.
__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "PRIORITIES",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AgentMessage",
    "AgentRoute",
    "Analysis",
    "AnalyzeLatency",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Classification",
    "Client",
    "Conversation",
    "Decision",
    "Entities",
    "InvalidResponseError",
    "Metadata",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Rejection",
    "RequestTooLargeError",
    "Retry",
    "Route",
    "Selection",
    "ServerError",
    "ServiceUnavailableError",
    "TinyrouteClient",
    "TinyrouteError",
]
