"""What tinyroute answers, as dataclasses. Each has a `raw` field holding the JSON it came from, so
fields a newer server adds are never lost. Parsing raises InvalidResponseError (type "invalid_response")
when a field the client relies on is missing or of the wrong type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .errors import InvalidResponseError


def _bad(what: str, data: Any) -> InvalidResponseError:
    return InvalidResponseError(f"unexpected response from tinyroute: {what}", type="invalid_response", body=data)


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise _bad(f"{what} is not a JSON object", data)
    return data


def _str(data: Mapping[str, Any], key: str, default: Optional[str] = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise _bad(f'"{key}" is not a string', data)
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(f'"{key}" is not a string or null', data)
    return value


def _num(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f'"{key}" is not a number', data)
    return float(value)


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f'"{key}" is not an integer', data)
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _bad(f'"{key}" is not a boolean', data)
    return value


def _strs(data: Mapping[str, Any], key: str) -> List[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f'"{key}" is not a list of strings', data)
    return list(value)


def _distribution(data: Mapping[str, Any], name_key: str) -> Dict[str, float]:
    """[{"label"|"agent": name, "prob": p}, ...] (highest first) -> {name: p} in the same order."""
    value = data.get("distribution", [])
    if not isinstance(value, list):
        raise _bad('"distribution" is not a list', data)
    out: Dict[str, float] = {}
    for entry in value:
        entry = _obj(entry, "a distribution entry")
        out[_str(entry, name_key)] = _num(entry, "prob")
    return out




@dataclass
class Classification:
    """POST /v1/classify: the task category of a request, decided by the internal model's label scores."""

    category: str  # the decision (the default category when uncertain)
    confidence: float  # probability of top_label
    distribution: Dict[str, float]  # every configured category -> probability, highest first
    uncertain: bool  # confidence below the threshold, so `category` is the default
    source: str  # model | default | rule | cache
    top_label: str = ""  # what the model ranked first, even when uncertain
    strategy: str = ""
    query_tokens: int = 0
    truncated: bool = False
    tokens_decoded: int = 0
    latency_ms: float = 0.0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "Classification":
        d = _obj(data, "the classification")
        return cls(
            category=_str(d, "category"),
            confidence=_num(d, "confidence"),
            distribution=_distribution(d, "label"),
            uncertain=_bool(d, "uncertain"),
            source=_str(d, "source", ""),
            top_label=_str(d, "top_label", ""),
            strategy=_str(d, "strategy", ""),
            query_tokens=_int(d, "query_tokens"),
            truncated=_bool(d, "truncated"),
            tokens_decoded=_int(d, "tokens_decoded"),
            latency_ms=_num(d, "latency_ms"),
            raw=dict(d),
        )


@dataclass
class Rejection:
    model: str
    why: str  # e.g. "context 8192 < 12000 tokens"

    @classmethod
    def from_json(cls, data: Any) -> "Rejection":
        d = _obj(data, "a rejection")
        return cls(model=_str(d, "model"), why=_str(d, "why", ""))


@dataclass
class Selection:
    """POST /v1/select: the large model that should answer a request of a category."""

    model: str  # ask this one first
    fallbacks: List[str]  # then these, in order
    reason: str  # one sentence: what was picked and what was skipped
    rejected: List[Rejection] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "Selection":
        d = _obj(data, "the selection")
        rejected = d.get("rejected", [])
        if not isinstance(rejected, list):
            raise _bad('"rejected" is not a list', d)
        return cls(
            model=_str(d, "model"),
            fallbacks=_strs(d, "fallbacks"),
            reason=_str(d, "reason", ""),
            rejected=[Rejection.from_json(r) for r in rejected],
            raw=dict(d),
        )


@dataclass
class Route:
    """POST /v1/route: classification and selection in one call, as the gateway would route "auto"."""

    category: str
    confidence: float
    model: str
    fallbacks: List[str]
    reason: str
    source: str  # rule | model | cache | default
    route_ms: float = 0.0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "Route":
        d = _obj(data, "the route")
        return cls(
            category=_str(d, "category"),
            confidence=_num(d, "confidence"),
            model=_str(d, "model"),
            fallbacks=_strs(d, "fallbacks"),
            reason=_str(d, "reason", ""),
            source=_str(d, "source", ""),
            route_ms=_num(d, "route_ms"),
            raw=dict(d),
        )


@dataclass
class AgentRoute:
    """POST /v1/agents/route: which configured agent a message is for."""

    agent: str  # the decision (the triage agent when uncertain)
    confidence: float
    distribution: Dict[str, float]  # every agent -> probability, highest first
    uncertain: bool
    source: str
    top_agent: str = ""
    query_tokens: int = 0
    truncated: bool = False
    tokens_decoded: int = 0
    latency_ms: float = 0.0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "AgentRoute":
        d = _obj(data, "the agent route")
        return cls(
            agent=_str(d, "agent"),
            confidence=_num(d, "confidence"),
            distribution=_distribution(d, "agent"),
            uncertain=_bool(d, "uncertain"),
            source=_str(d, "source", ""),
            top_agent=_str(d, "top_agent", ""),
            query_tokens=_int(d, "query_tokens"),
            truncated=_bool(d, "truncated"),
            tokens_decoded=_int(d, "tokens_decoded"),
            latency_ms=_num(d, "latency_ms"),
            raw=dict(d),
        )


@dataclass
class Entities:
    people: List[str] = field(default_factory=list)
    dates: List[str] = field(default_factory=list)
    systems: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)


@dataclass
class AgentMessage:
    """POST /v1/agents/messages: an agent-message.v1 envelope. `raw` is the envelope exactly as the
    server sent it (send that on to the agent); `body` always holds the original text."""

    id: str
    from_: str  # the envelope's "from"
    to: str
    kind: str  # task | question | report | handoff | notification
    intent: str
    priority: str  # low | normal | high | urgent
    summary: str
    entities: Entities
    deadline: Optional[str]  # YYYY-MM-DD
    language: str
    reply_to: Optional[str]
    correlation_id: str
    hop_count: int
    created_at: str
    body: str
    schema: str = "agent-message.v1"
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "AgentMessage":
        d = _obj(data, "the envelope")
        entities = _obj(d.get("entities", {}), '"entities"')
        trace = _obj(d.get("trace", {}), '"trace"')
        return cls(
            id=_str(d, "id"),
            from_=_str(d, "from"),
            to=_str(d, "to"),
            kind=_str(d, "kind"),
            intent=_str(d, "intent", ""),
            priority=_str(d, "priority", ""),
            summary=_str(d, "summary", ""),
            entities=Entities(
                people=_strs(entities, "people"),
                dates=_strs(entities, "dates"),
                systems=_strs(entities, "systems"),
                files=_strs(entities, "files"),
            ),
            deadline=_opt_str(d, "deadline"),
            language=_str(d, "language", ""),
            reply_to=_opt_str(d, "reply_to"),
            correlation_id=_str(trace, "correlation_id", ""),
            hop_count=_int(trace, "hop_count"),
            created_at=_str(d, "created_at", ""),
            body=_str(d, "body"),
            schema=_str(d, "schema", "agent-message.v1"),
            raw=dict(d),
        )


@dataclass
class Metadata:
    """POST /v1/metadata: facts about a message for routing and scheduling."""

    language: str  # en | ru | de | fr | es | zh | und
    intent: str
    urgency: str  # low | normal | high | urgent
    topics: List[str]
    needs_tools: bool
    complexity: str  # simple | complex
    estimated_tokens: int  # the internal model's token count of the text
    latency_ms: float = 0.0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "Metadata":
        d = _obj(data, "the metadata")
        return cls(
            language=_str(d, "language"),
            intent=_str(d, "intent", ""),
            urgency=_str(d, "urgency", ""),
            topics=_strs(d, "topics"),
            needs_tools=_bool(d, "needs_tools"),
            complexity=_str(d, "complexity", ""),
            estimated_tokens=_int(d, "estimated_tokens"),
            latency_ms=_num(d, "latency_ms"),
            raw=dict(d),
        )


@dataclass
class Decision:
    """One of /v1/analyze's field decisions (e.g. language, urgency): the value the model chose."""

    value: str
    confidence: float
    distribution: Dict[str, float]  # every allowed value -> probability, highest first

    @classmethod
    def from_json(cls, data: Any) -> "Decision":
        d = _obj(data, "a field decision")
        return cls(value=_str(d, "value"), confidence=_num(d, "confidence"),
                   distribution=_distribution(d, "label"))


@dataclass
class Conversation:
    """The conversation an analysis belongs to (present when the request named one)."""

    id: str
    turns: int  # turns the server has seen in it, this one included
    source: str  # how the server knew the conversation
    reused_tokens: int  # prompt tokens served from the conversation's cached state

    @classmethod
    def from_json(cls, data: Any) -> "Conversation":
        d = _obj(data, '"conversation"')
        return cls(id=_str(d, "id"), turns=_int(d, "turns"), source=_str(d, "source", ""),
                   reused_tokens=_int(d, "reused_tokens"))


@dataclass
class AnalyzeLatency:
    """Milliseconds spent: queued, on the whole request, on the model's decisions, on selection, in all."""

    queue: float
    request: float
    decisions: float
    select: float
    total: float

    @classmethod
    def from_json(cls, data: Any) -> "AnalyzeLatency":
        d = _obj(data, '"latency_ms"')
        return cls(*(_num(d, k) for k in ("queue", "request", "decisions", "select", "total")))


@dataclass
class Analysis:
    """POST /v1/analyze: every decision in one pass over the text: the category (a Classification), the
    agent (when the server has agents), the field decisions, the model selection."""

    category: Classification
    selection: Selection
    fields: Dict[str, Decision]
    agent: Optional[AgentRoute]
    conversation: Optional[Conversation]
    source: str  # model | cache
    decision_source: str  # rule | cache | what the classification's source was
    query_tokens: int
    truncated: bool
    tokens_decoded: int
    latency_ms: AnalyzeLatency
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "Analysis":
        d = _obj(data, "the analysis")
        fields = _obj(d.get("fields", {}), '"fields"')
        agent = d.get("agent")
        conversation = d.get("conversation")
        return cls(
            category=Classification.from_json(d.get("category")),
            selection=Selection.from_json(d.get("selection")),
            fields={name: Decision.from_json(f) for name, f in fields.items()},
            agent=AgentRoute.from_json(agent) if agent is not None else None,
            conversation=Conversation.from_json(conversation) if conversation is not None else None,
            source=_str(d, "source", ""),
            decision_source=_str(d, "decision_source", ""),
            query_tokens=_int(d, "query_tokens"),
            truncated=_bool(d, "truncated"),
            tokens_decoded=_int(d, "tokens_decoded"),
            latency_ms=AnalyzeLatency.from_json(d.get("latency_ms", {})),
            raw=dict(d),
        )
