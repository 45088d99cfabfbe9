"""A real webhook receiver on loopback for the tests: it verifies every request's signature as
docs/webhooks.md tells receivers to, records what arrived, and can be slow, failing or down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from concilia.integrations.webhooks.signing import verify


@dataclass
class Received:
    event_id: str
    kind: str
    timestamp: int
    signed: bool
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    secret: str = ""
    # The status to answer, or a function of the request's document deciding it.
    answer: int | Callable[[dict[str, Any]], int] = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                document = json.loads(raw)
                status = receiver.answer(document) if callable(receiver.answer) else receiver.answer
                timestamp = int(self.headers["Concilia-Timestamp"])
                receiver.received.append(
                    Received(
                        event_id=self.headers["Concilia-Event-Id"],
                        kind=self.headers["Concilia-Event"],
                        timestamp=timestamp,
                        signed=verify(
                            receiver.secret, timestamp, raw, self.headers["Concilia-Signature"]
                        ),
                        body=document,
                        status=status,
                    )
                )
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def accepted_ids(self) -> set[str]:
        """What a receiver that deduplicates by event id has processed."""
        return {r.event_id for r in self.accepted()}
