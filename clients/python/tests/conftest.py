"""Fixtures: a real `tinyroute serve` on a generated tiny model; a real gateway (`tinyroute serve` in
front of real llama-servers: one for chat, one for embeddings) for the SDK tests in sdk/; and small
scripted HTTP servers for the failure modes a real tinyroute will not produce on demand (Ollama-style
errors, silence, 5xx then success).

The binaries come from the environment that ctest sets (tests/python/CMakeLists.txt):
TINYROUTE_BIN, TINYROUTE_MKMODEL, TINYROUTE_VOCAB_GGUF, TINYROUTE_LLAMA_SERVER and TINYROUTE_TEST_MODELS.
Run by hand, they are read from build/release (else build/debug)/tinyroute-paths.env.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # import the package from source, no install needed
REPO = HERE.parents[2]

CATEGORIES = ["chat", "coding", "math"]
AGENTS = ["billing", "devops", "triage"]


REQUIRED = ("TINYROUTE_BIN", "TINYROUTE_MKMODEL", "TINYROUTE_VOCAB_GGUF")


def skip_or_fail(reason: str) -> None:
    """In CI a missing prerequisite is a failure: a suite that skips there tests nothing."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true)")
    pytest.skip(reason)


def _paths() -> Dict[str, str]:
    found = {k: os.environ[k] for k in REQUIRED + ("TINYROUTE_LLAMA_SERVER",) if os.environ.get(k)}
    if all(found.get(k) for k in REQUIRED):
        return found
    for build in ("release", "debug"):
        env = REPO / "build" / build / "tinyroute-paths.env"
        if env.exists():
            for line in env.read_text().splitlines():
                key, _, value = line.partition("=")
                if value:
                    found.setdefault(key, value)
            break
    missing = [k for k in REQUIRED if not found.get(k)]
    if missing:
        skip_or_fail(f"build tinyroute first (cmake --build --preset release) or set {', '.join(missing)}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(paths: Dict[str, str], cache: Path, seed: int = 1) -> str:
    """The same generated model (and the same lock) the C++ tests use, so it is made once per build."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"tiny-{seed}.gguf"
    with open(str(path) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            tmp = str(path) + ".tmp"
            out = subprocess.run(
                [paths["TINYROUTE_MKMODEL"], "--vocab", paths["TINYROUTE_VOCAB_GGUF"], "--out", tmp,
                 "--preset", "tiny", "--seed", str(seed)],
                capture_output=True, text=True,
            )
            assert out.returncode == 0, f"tinyroute-mkmodel failed: {out.stdout}{out.stderr}"
            os.rename(tmp, path)
    return str(path)


def config_yaml(model: str, upstream_port: int, extra: str = "", *, internal_name: str = "",
                big_capabilities: str = "", more_models: str = "") -> str:
    """The test deployment. internal_name names the internal model (else its file's stem does);
    big_capabilities is the "big" model's capabilities mapping (e.g. "{tools: true}"); more_models are
    further entries of `models:`."""
    base = f"http://127.0.0.1:{upstream_port}"
    name = f"\n  name: {internal_name}" if internal_name else ""
    caps = f"\n    capabilities: {big_capabilities}" if big_capabilities else ""
    return f"""internal_model:
  model: {model}{name}
  threads: 1
  context: 2048
  parallel: 4
categories:
  - name: chat
    description: Casual conversation and greetings.
    examples: ["Hi! How are you?", "Привет! Как дела?"]
  - name: coding
    description: Writing, reviewing or debugging source code.
    examples: ["Write a Python function", "Напиши функцию на C++"]
  - name: math
    description: Calculations and equations.
models:
  - name: big
    provider: openai
    base_url: {base}
    upstream_model: tiny
    categories: [chat, coding, math]{caps}
  - name: spare
    provider: openai
    base_url: {base}
    categories: [coding]
{more_models}fallbacks:
  chat: [spare]
default_category: chat
agent_routing:
  threshold: 0.35
  max_hops: 3
  max_message_bytes: 2048
agents:
  - name: billing
    description: Invoices, refunds and payments.
    skills: [refunds, invoices]
    examples: ["Где мой счёт за март?"]
    endpoint: http://127.0.0.1:9001/inbox
  - name: devops
    description: Deployments, servers and outages.
    skills: [kubernetes, on-call]
    examples: ["prod is down"]
    endpoint: http://127.0.0.1:9002/inbox
    accepts: [task, report]
  - name: triage
    description: Anything else, sent on to a person.
    endpoint: http://127.0.0.1:9003/inbox
    triage: true
{extra}"""


@dataclass
class Serve:
    """A running `tinyroute serve`."""

    url: str
    port: int
    config: str
    log: Path
    bin: str
    process: subprocess.Popen = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_serve(paths: Dict[str, str], workdir: Path, yaml: str, env: Optional[Dict[str, str]] = None) -> Serve:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "tinyroute.yaml"
    config.write_text(yaml)
    log = workdir / "serve.log"
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [paths["TINYROUTE_BIN"], "serve", "--config", str(config), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
    serve = Serve(f"http://127.0.0.1:{port}", port, str(config), log, paths["TINYROUTE_BIN"], process)
    deadline = time.monotonic() + 120  # the ASan build loads slowly on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tinyroute serve exited with {process.returncode}:\n{serve.log_text()}")
        try:
            if httpx.get(serve.url + "/health", timeout=1).status_code == 200:
                return serve
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    serve.stop()
    pytest.fail(f"tinyroute serve did not become healthy:\n{serve.log_text()}")


@pytest.fixture(scope="session")
def paths() -> Dict[str, str]:
    return _paths()


@pytest.fixture(scope="session")
def model(paths: Dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    cache = os.environ.get("TINYROUTE_TEST_MODELS")
    return tiny_model(paths, Path(cache) if cache else tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def server(paths: Dict[str, str], model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One server for the whole session; it must stop cleanly (exit 0: under ASan, no leak reports)."""
    serve = start_serve(paths, tmp_path_factory.mktemp("serve"), config_yaml(model, free_port()))
    yield serve
    rc = serve.stop()
    assert rc == 0, f"tinyroute serve exited with {rc} on SIGTERM:\n{serve.log_text()}"


# ---- a real gateway: tinyroute serve in front of real llama-servers --------------------------------

INTERNAL_NAME = "router-small"  # the gateway's internal model: every protocol must refuse it


@dataclass
class Llama:
    """A running llama-server."""

    url: str
    port: int
    log: Path
    process: subprocess.Popen = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_llama_server(paths: Dict[str, str], model: str, workdir: Path, *extra: str) -> Llama:
    binary = paths.get("TINYROUTE_LLAMA_SERVER")
    if not binary:
        skip_or_fail("llama-server is not built (TINYROUTE_LLAMA_SERVER is empty)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"llama-server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(port), "-m", model, "-t", "1", *extra],
            stdout=out, stderr=subprocess.STDOUT,
        )
    llama = Llama(f"http://127.0.0.1:{port}", port, log, process)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama-server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(llama.url + "/health", timeout=1).status_code == 200:
                return llama
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    llama.stop()
    pytest.fail(f"llama-server did not become healthy:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def gateway(paths: Dict[str, str], model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """`tinyroute serve` whose answer models are real llama-servers on the generated model: "big"
    (tools-capable) and "spare" on a chat server, "embedder" on an embeddings server. The internal model is
    named INTERNAL_NAME."""
    work = tmp_path_factory.mktemp("gateway")
    chat = start_llama_server(paths, model, work, "-c", "2048", "-np", "2")
    embed = None
    serve = None
    try:
        embed = start_llama_server(paths, model, work, "-c", "1024", "-np", "1", "--embeddings", "--pooling", "mean")
        embedder = f"""  - name: embedder
    provider: openai
    base_url: {embed.url}
    capabilities: {{embedding: true}}
"""
        yaml = config_yaml(model, chat.port, internal_name=INTERNAL_NAME, big_capabilities="{tools: true}",
                           more_models=embedder)
        serve = start_serve(paths, work, yaml)
        yield serve
    finally:
        rc = serve.stop() if serve else 0
        chat.stop()
        if embed:
            embed.stop()
    assert rc == 0, f"tinyroute serve exited with {rc} on SIGTERM:\n{serve.log_text()}"


# ---- scripted servers ------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: Dict[str, str]
    body: Any


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Dict[str, str] = field(default_factory=dict)


def _answer(status: int, body: Any, content_type: str, headers: Optional[Dict[str, str]]) -> Answer:
    return Answer(status, body if isinstance(body, bytes) else json.dumps(body).encode(), content_type,
                  dict(headers or {}))


@dataclass
class Scripted:
    """An HTTP server on 127.0.0.1 that answers the queued answers first (`then`), one per request, and
    every request after that with `answer`; it records what it was sent (header names lower-cased) and
    when (`times`, time.monotonic())."""

    url: str
    seen: List[Seen]
    times: List[float] = field(default_factory=list)
    default: Answer = field(default_factory=lambda: Answer(200, b"{}"))
    queue: List[Answer] = field(default_factory=list)

    def answer(self, status: int, body: Any, content_type: str = "application/json",
               headers: Optional[Dict[str, str]] = None) -> None:
        self.default = _answer(status, body, content_type, headers)

    def then(self, status: int, body: Any, content_type: str = "application/json",
             headers: Optional[Dict[str, str]] = None) -> None:
        self.queue.append(_answer(status, body, content_type, headers))

    def next_answer(self) -> Answer:
        return self.queue.pop(0) if self.queue else self.default


@contextlib.contextmanager
def scripted_server() -> Iterator[Scripted]:
    state: Dict[str, Scripted] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            s = state["s"]
            s.times.append(time.monotonic())
            s.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                               json.loads(raw) if raw else None))
            a = s.next_answer()
            self.send_response(a.status)
            self.send_header("content-type", a.content_type)
            self.send_header("content-length", str(len(a.body)))
            for name, value in a.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(a.body)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["s"] = Scripted(f"http://127.0.0.1:{httpd.server_address[1]}", [])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["s"]
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel's backlog does) and never answers: every request times out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
