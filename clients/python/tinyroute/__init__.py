"""tinyroute: an async client for tinyroute's routing API (classification, model selection, agent
routing, agent-message envelopes, metadata). The internal model only decides; it never writes an
answer, so this client has no generate/chat method."""

from .client import DEFAULT_BASE_URL, PRIORITIES, TinyrouteClient
from .errors import TinyrouteError
from .models import (
    AgentMessage,
    AgentRoute,
    Classification,
    Entities,
    Metadata,
    Rejection,
    Route,
    Selection,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "PRIORITIES",
    "AgentMessage",
    "AgentRoute",
    "Classification",
    "Entities",
    "Metadata",
    "Rejection",
    "Route",
    "Selection",
    "TinyrouteClient",
    "TinyrouteError",
]
