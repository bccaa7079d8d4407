#!/usr/bin/env python3
"""Load for the bus benchmark (bench/bus.sh): publishes deployment envelopes to the inbox, waits
until every one is in an agent stream, and reports throughput and delivery latency (agent-stream
entry id minus inbox entry id: both Redis clocks, so no clock skew). Standard library only.

usage: bus-load.py PORT COUNT AGENTS [--rate R] [--unaddressed] [--split AGENT] [--label NAME]
  AGENTS  comma-separated agent names (addressed messages cycle through them)
  --rate  messages per second (0 = all at once, as a backlog)
  --split every third message goes to AGENT, the rest cycle through the others; latency is also
          reported for AGENT's messages and for the others' apart
"""
import argparse
import json
import socket
import time
import uuid

TEXTS = [
    "Where is my invoice for March? I was charged twice.",
    "The production cluster is down, please restart the deployment.",
    "What is the balance on my checking account?",
    "Переведи этот текст на английский, пожалуйста.",
    "Book a table for two tomorrow at 7pm.",
]


class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def send(self, *commands):
        out = []
        for args in commands:
            out.append(b"*%d\r\n" % len(args))
            for a in args:
                a = a.encode() if isinstance(a, str) else a
                out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return [self.read() for _ in commands]

    def read(self):
        line = self.file.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data.decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)


def ms(entry_id):
    return int(entry_id.split("-")[0])


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("agents")
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--unaddressed", action="store_true")
    ap.add_argument("--split", default="")
    ap.add_argument("--label", default="bus")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    agents = a.agents.split(",")
    r = Redis(a.port)
    streams = ["stream:agent:messages:" + x for x in agents]
    before = sum(r.send(*[["XLEN", s] for s in streams]))
    batch = []
    start = time.time()
    for i in range(a.count):
        fields = ["msg_id", str(uuid.uuid4()), "from_agent", "bench", "verb", "TELL",
                  "payload", TEXTS[i % len(TEXTS)], "correlation_id", "bench-%d" % i,
                  "requires_response", "false",
                  "timestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())]
        if a.split:
            others = [x for x in agents if x != a.split]
            fields += ["to_agent", a.split if i % 3 == 0 else others[i % len(others)]]
        elif not a.unaddressed:
            fields += ["to_agent", agents[i % len(agents)]]
        batch.append(["XADD", "stream:tinyroute:inbox", "*"] + fields)
        if a.rate > 0:
            r.send(*batch)
            batch = []
            delay = start + (i + 1) / a.rate - time.time()
            if delay > 0:
                time.sleep(delay)
        elif len(batch) == 500:
            r.send(*batch)
            batch = []
    if batch:
        r.send(*batch)
    deadline = time.time() + a.timeout
    while sum(r.send(*[["XLEN", s] for s in streams])) - before < a.count:
        if time.time() > deadline:
            raise SystemExit("timed out waiting for deliveries")
        time.sleep(0.05)
    latencies, first_in, last_out = [], None, 0
    parts = {"split": [], "others": []}
    for s in streams:
        for entry_id, kv in r.send(["XRANGE", s, "-", "+"])[0]:
            f = dict(zip(kv[::2], kv[1::2]))
            if not f.get("correlation_id", "").startswith("bench-"):
                continue
            inbox = ms(f["inbox_id"])
            latencies.append(ms(entry_id) - inbox)
            parts["split" if f.get("to_agent") == a.split else "others"].append(ms(entry_id) - inbox)
            first_in = inbox if first_in is None else min(first_in, inbox)
            last_out = max(last_out, ms(entry_id))
    latencies = latencies[-a.count:]
    seconds = max(0.001, (last_out - first_in) / 1000.0)
    row = {
        "label": a.label, "messages": a.count, "rate": a.rate,
        "messages_per_s": round(a.count / seconds, 2),
        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
    }
    if a.split:
        for part, values in parts.items():
            if values:
                row.update({part + "_messages": len(values), part + "_p50_ms": percentile(values, 50),
                            part + "_p95_ms": percentile(values, 95)})
    print(json.dumps(row))


if __name__ == "__main__":
    main()
