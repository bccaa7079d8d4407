"""A deployment agent written the way the deployment writes them, with redis-py's asyncio client.

It puts messages in the deployment's bus envelope (msg_id, from_agent, to_agent, verb, payload,
correlation_id, requires_response, timestamp) on the inbox stream with XADD; then, as the agent AGENT,
it reads its own stream (stream:agent:messages:AGENT) in its consumer group with XREADGROUP and XACKs
each entry, until every message it addressed to AGENT has arrived (or TIMEOUT seconds pass: exit 1).

usage: python-agent.py PORT INBOX COUNT AGENT [TIMEOUT]
prints "sent MSG_ID" for each message written, then "received MSG_ID" for each entry read and acked.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import uuid
from typing import Dict, List, Set

import redis.asyncio as redis
from redis.exceptions import ResponseError

GROUP = "python-agent"
CONSUMER = "python-agent-1"
TEXTS = [
    ("ASK", "Where is my invoice for March? I was charged twice."),
    ("TELL", "The production cluster is down, please restart the deployment."),
    ("OBSERVE", "Disk usage on db-1 reached 97 percent."),
    ("TELL", "Переведи этот текст на английский."),
    ("PING", "Are you there?"),
]


def envelope(i: int, agent: str) -> Dict[str, str]:
    verb, text = TEXTS[i % len(TEXTS)]
    fields = {
        "msg_id": str(uuid.uuid4()),
        "from_agent": "python-agent",
        "verb": verb,
        "payload": text,
        "correlation_id": f"py-conv-{i // 3}",
        "requires_response": str(verb == "ASK"),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    if i % 4 == 3:
        fields["to_agent"] = agent  # addressed; the rest are routed
    elif i % 4 == 2:
        fields["to_agent"] = "auto"
    return fields


async def main(port: int, inbox: str, count: int, agent: str, timeout: float) -> int:
    own = f"stream:agent:messages:{agent}"
    async with redis.Redis(host="127.0.0.1", port=port, decode_responses=True) as r:
        try:  # from the stream's start: messages the bus delivers before we read are ours too
            await r.xgroup_create(own, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        addressed: Set[str] = set()
        for i in range(count):
            fields = envelope(i, agent)
            await r.xadd(inbox, fields)
            if fields.get("to_agent") == agent:
                addressed.add(fields["msg_id"])
            print("sent", fields["msg_id"], flush=True)

        received: List[str] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while not addressed <= set(received):
            if asyncio.get_running_loop().time() > deadline:
                print(f"timeout: {len(addressed - set(received))} addressed messages never arrived", file=sys.stderr)
                return 1
            reply = await r.xreadgroup(GROUP, CONSUMER, {own: ">"}, count=10, block=500)
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    received.append(fields["msg_id"])
                    await r.xack(own, GROUP, entry_id)
                    print("received", fields["msg_id"], flush=True)
    return 0


if __name__ == "__main__":
    a = sys.argv
    sys.exit(asyncio.run(main(int(a[1]), a[2], int(a[3]), a[4], float(a[5]) if len(a) > 5 else 420.0)))
