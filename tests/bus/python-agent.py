#!/usr/bin/env python3
"""A deployment agent written the way the deployment writes them: it puts messages in its bus
envelope (msg_id, from_agent, to_agent, verb, payload, correlation_id, requires_response, timestamp)
on the inbox stream with XADD. Standard library only (RESP over a socket).

usage: python-agent.py PORT STREAM COUNT  -> prints one msg_id per line
"""
import datetime
import socket
import sys
import uuid


def command(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    reply = b""
    while not reply.endswith(b"\r\n"):
        reply += sock.recv(4096)
    if reply.startswith(b"-"):
        raise RuntimeError(reply.decode())
    if reply.startswith(b"$"):
        length = int(reply[1:reply.index(b"\r\n")])
        head = reply.index(b"\r\n") + 2
        while len(reply) < head + length + 2:
            reply += sock.recv(4096)
        return reply[head:head + length].decode()
    return reply.decode().strip()


TEXTS = [
    ("ASK", "Where is my invoice for March? I was charged twice."),
    ("TELL", "The production cluster is down, please restart the deployment."),
    ("OBSERVE", "Disk usage on db-1 reached 97 percent."),
    ("TELL", "Переведи этот текст на английский."),
    ("PING", "Are you there?"),
]


def main():
    port, stream, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    for i in range(count):
        verb, text = TEXTS[i % len(TEXTS)]
        msg_id = str(uuid.uuid4())
        fields = {
            "msg_id": msg_id,
            "from_agent": "python-agent",
            "verb": verb,
            "payload": text,
            "correlation_id": "py-conv-%d" % (i // 3),
            "requires_response": str(verb == "ASK"),
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        if i % 4 == 3:
            fields["to_agent"] = "billing"  # addressed; the rest are routed
        elif i % 4 == 2:
            fields["to_agent"] = "auto"
        args = ["XADD", stream, "*"]
        for k, v in fields.items():
            args += [k, v]
        command(sock, *args)
        print(msg_id)
    sock.close()


if __name__ == "__main__":
    main()
