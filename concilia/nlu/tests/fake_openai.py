"""A fake OpenAI-compatible server on loopback: scripted chat completions, failures and a request log.

It speaks the real protocol over a real socket (POST /v1/chat/completions, OpenAI's response
shape), so the code under test runs its own HTTP client unchanged. Script it with `reply()` (a
message's content), `fail()` (an HTTP status), `malformed()` (a body that is not JSON), `stall()`
(no answer before the client's timeout) or `answer_with()` (a function of each request).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON, or the raw text when it was not JSON

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.body["messages"]

    @property
    def system(self) -> str:
        return next(m["content"] for m in self.messages if m["role"] == "system")

    @property
    def user(self) -> str:
        return [m["content"] for m in self.messages if m["role"] == "user"][-1]


@dataclass(frozen=True)
class Scripted:
    """What the server does for one request."""

    content: str | None = None  # the message content of a 200 chat completion
    status: int = 200
    raw: bytes | None = None  # sent as the body instead of a chat completion
    delay: float = 0.0  # seconds to wait before answering


Answer = str | Scripted | Callable[[ReceivedRequest], "str | Scripted"]


@dataclass
class FakeOpenAI:
    """The server; `url` is the base URL to put in LLM_BASE_URL."""

    model: str = "fake-model"
    requests: list[ReceivedRequest] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    _default: Answer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll so that stopping (which waits for the next poll) takes no noticeable time.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # --- scripting ----------------------------------------------------------------------------

    def reply(self, content: str | dict[str, Any]) -> None:
        """Answer the next request with this content (a dict is sent as its JSON text)."""
        self._script.append(content if isinstance(content, str) else json.dumps(content))

    def fail(self, status: int = 500) -> None:
        self._script.append(Scripted(status=status, raw=b'{"error": {"message": "boom"}}'))

    def malformed(self, body: bytes = b"<html>not json") -> None:
        """Answer 200 with a body that is not a chat completion."""
        self._script.append(Scripted(raw=body))

    def stall(self, seconds: float, content: str = "{}") -> None:
        """Wait `seconds` before answering (past the client's timeout, usually)."""
        self._script.append(Scripted(content=content, delay=seconds))

    def answer_with(self, answer: Callable[[ReceivedRequest], str | Scripted]) -> None:
        """Answer every request not otherwise scripted through this function."""
        self._default = answer

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving ------------------------------------------------------------------------------

    def _next(self, request: ReceivedRequest) -> Scripted:
        answer: Answer | None = self._script.popleft() if self._script else self._default
        if answer is None:
            return Scripted(status=500, raw=b'{"error": {"message": "nothing scripted"}}')
        if callable(answer):
            answer = answer(request)
        return Scripted(content=answer) if isinstance(answer, str) else answer

    def _completion(self, content: str) -> bytes:
        return json.dumps(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": 1764633600,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        ).encode()


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            request = ReceivedRequest(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            fake.requests.append(request)
            if self.path != PATH:
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            scripted = fake._next(request)
            if scripted.delay and fake._stopping.wait(scripted.delay):
                return  # the server is stopping: nobody is listening any more
            payload = (
                scripted.raw
                if scripted.raw is not None
                else fake._completion(scripted.content or "")
            )
            self._send(scripted.status, payload)

        def _send(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): what a real server sees too

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@pytest.fixture(name="fake_openai")
def fake_openai_fixture(settings) -> Iterator[FakeOpenAI]:
    """A running fake server, with the LLM settings pointing at it (no key, 2 s timeout).

    Import `fake_openai_fixture` into a test module to use the `fake_openai` fixture there.
    """
    with FakeOpenAI() as server:
        settings.LLM_BASE_URL = server.url
        settings.LLM_MODEL = "concilia-test-model"
        settings.LLM_API_KEY = ""
        settings.LLM_TIMEOUT = 2.0
        yield server
