"""Hostile clients against the real server (`concilia serve` on loopback, one for the module):
oversized bodies, malformed multipart and slow senders are refused with a clear 4xx in the
client's language, leave nothing stored, and do not harm the requests of everybody else.

Requests are written byte for byte on a socket (no HTTP library would send them), the body from
a second thread so that a server answering before it has read everything is heard."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from concilia.core.tests.test_serve import free_port, wait_for
from conftest import PDF_BYTES

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
)

MAX_ATTACHMENT = 512 * 1024  # the server's per-file limit here: small uploads, fast tests
BOUNDARY = "----hostile7MA4YWxkTrZu0gW"
COMPLAINT = {
    "category": "other",
    "name": "Ana López",
    "email": "ana@example.com",
    "description": "El servicio técnico no me ha llamado.",
    "desired_resolution": "Una llamada",
    "accept_privacy": True,
    "language": "en",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Server:
    port: int
    home: Path

    def count(self, table: str) -> int:
        with sqlite3.connect(self.home / "concilia.sqlite3", timeout=10) as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608

    def stored(self) -> dict[str, int]:
        """What a refused request must not have added to."""
        tables = ("cases_case", "cases_attachment", "intake_pendingupload")
        counts = {table: self.count(table) for table in (*tables, "assistant_chatupload")}
        counts["files"] = sum(1 for p in (self.home / "attachments").rglob("*") if p.is_file())
        return counts

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        close_after: bool = False,
        timeout: float = 20,
    ) -> Answer:
        """One request on its own connection. `close_after` shuts the sending side after the
        body (a client that declared more than it sends); headers may override Content-Length."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        given = {"Connection": "close", "Accept-Language": "en", "Content-Length": str(len(body))}
        given.update(headers or {})
        lines += [f"{name}: {value}" for name, value in given.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(head)

            def send_body() -> None:
                try:
                    sock.sendall(body)
                    if close_after:
                        sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the server answered and closed before taking it all: its right

            sender = threading.Thread(target=send_body, daemon=True)
            sender.start()
            received = b""
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except ConnectionResetError:
                pass  # an answer already read is kept; none at all fails below
            sender.join(timeout)
        return parse(received)

    def submit_complaint(self, timeout: float = 20) -> Answer:
        return self.send(
            "POST",
            "/api/v1/complaints",
            json.dumps(COMPLAINT).encode(),
            {"Content-Type": "application/json"},
            timeout=timeout,
        )

    def assert_unharmed(self, before: dict[str, int], **added: int) -> None:
        """Nothing was stored but what is `added`, and a normal complaint is still answered."""
        expected = {name: count + added.get(name, 0) for name, count in before.items()}
        assert self.stored() == expected
        self.assert_still_serving()

    def assert_still_serving(self) -> None:
        started = time.monotonic()
        answer = self.submit_complaint(timeout=10)
        assert answer.status == 201, answer.text
        assert answer.json()["reference"].startswith("RC-")
        assert time.monotonic() - started < 2

    def form(self) -> tuple[dict[str, str], dict[str, str]]:
        """The complaint form's CSRF cookie, and the fields of a complaint ready to submit."""
        page = self.send("GET", "/complaints/new")
        assert page.status == 200
        cookie = re.search(r"csrftoken=([^;]+)", page.headers["set-cookie"]).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        fields = {
            "csrfmiddlewaretoken": token,
            "category": "other",
            "name": "Ana López",
            "email": "ana@example.com",
            "description": "Nadie me ha llamado todavía.",
            "desired_resolution": "Una llamada",
            "accept_privacy": "on",
        }
        headers = {
            "Cookie": f"csrftoken={cookie}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        return headers, fields

    def chat(self) -> tuple[str, dict[str, str]]:
        """A chat whose customer accepted the privacy notice (files are taken only then)."""
        started = self.send(
            "POST", "/api/v1/conversations", b'{"language": "en"}', JSON_HEADERS
        ).json()
        token = {"X-Conversation-Token": started["token"]}
        accepted = self.send(
            "POST",
            f"/api/v1/conversations/{started['id']}/messages",
            b'{"choice": "accept"}',
            {**JSON_HEADERS, **token},
        )
        assert accepted.status == 200, accepted.text
        headers = {**token, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        return f"/api/v1/conversations/{started['id']}/attachments", headers


JSON_HEADERS = {"Content-Type": "application/json"}
OVER_THE_LIMIT = PDF_BYTES + b"0" * (MAX_ATTACHMENT + 1 - len(PDF_BYTES))


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        raise AssertionError("the server closed the connection without an answer")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts += [
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        + content
        + b"\r\n"
        for name, (filename, content) in files.items()
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    log_file = home.parent / "serve.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CONCILIA_HOME=str(home),
        CONCILIA_MAX_ATTACHMENT_BYTES=str(MAX_ATTACHMENT),
        # Every normal request here comes from one address: the limits have their own tests.
        CONCILIA_ANON_SUBMISSION_RATE="",
        CONCILIA_CHAT_START_RATE="",
        CONCILIA_CHAT_MESSAGE_RATE="",
    )
    with log_file.open("wb") as log_out:  # a file, not a pipe: nobody reads it until the end
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "concilia",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-worker",
                "--no-sweep",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_out,
            start_new_session=True,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/complaints/new", seconds=120)
        yield Server(port, home)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    log = log_file.read_text(errors="replace")
    # Refusals are logged as warnings; a 500 would be an ERROR with a traceback.
    assert "Internal Server Error" not in log, log[-5000:]


def test_a_json_body_over_the_limit_is_refused_with_a_json_413(server):
    # Given a complaint whose description alone is past DATA_UPLOAD_MAX_MEMORY_SIZE (2 MB)
    before = server.stored()
    body = json.dumps({**COMPLAINT, "description": "x" * 3_000_000}).encode()
    # When it is sent to the API
    answer = server.send("POST", "/api/v1/complaints", body, JSON_HEADERS)
    # Then it is refused in the API's own error format and language, and nothing is stored
    assert answer.status == 413
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {
        "detail": "The request is larger than this server accepts.",
        "errors": [],
    }
    server.assert_unharmed(before)


def test_a_form_attachment_over_the_limit_is_refused_and_not_kept(server):
    # Given the complaint form with a file one byte past the per-file limit
    headers, fields = server.form()
    before = server.stored()
    # When it is submitted
    answer = server.send(
        "POST",
        "/complaints/new",
        multipart(fields, {"attachments": ("big.pdf", OVER_THE_LIMIT)}),
        headers,
    )
    # Then the form comes back saying why, and no case, upload or file was kept
    assert answer.status == 400
    assert "files may be at most 512.0\xa0KB" in answer.text
    server.assert_unharmed(before)


def test_a_form_post_over_the_request_limit_gets_a_translated_400_page(server):
    # Given the complaint form with a description past DATA_UPLOAD_MAX_MEMORY_SIZE
    headers, fields = server.form()
    before = server.stored()
    body = multipart({**fields, "description": "x" * 3_000_000}, {})
    # When it is submitted, in English and then in Spanish
    english = server.send("POST", "/complaints/new", body, headers)
    spanish = server.send("POST", "/complaints/new", body, {**headers, "Accept-Language": "es"})
    # Then both get the 400 page in their language (not Django's bare one), and nothing is kept
    assert (english.status, spanish.status) == (400, 400)
    assert "The request could not be read" in english.text
    assert '<html lang="es">' in spanish.text
    server.assert_unharmed(before)


def test_a_chat_file_over_the_limit_is_refused_and_not_kept(server):
    # Given a chat that accepted the privacy notice
    path, headers = server.chat()
    before = server.stored()
    # When a file past the limit is sent
    answer = server.send(
        "POST", path, multipart({}, {"file": ("big.pdf", OVER_THE_LIMIT)}), headers
    )
    # Then it is refused with the reason, and nothing is kept
    assert answer.status == 422
    [error] = answer.json()["errors"]
    assert (error["field"], error["code"]) == ("file", "too_large")
    assert "files may be at most 512.0\xa0KB" in error["message"]
    server.assert_unharmed(before)


def test_a_chat_body_over_the_request_limit_is_refused_with_a_json_413(server):
    path, headers = server.chat()
    before = server.stored()
    answer = server.send("POST", path, multipart({"note": "x" * 3_000_000}, {}), headers)
    assert answer.status == 413
    assert answer.json()["detail"] == "The request is larger than this server accepts."
    server.assert_unharmed(before)


def _malformed(body: bytes, field: str) -> dict[str, tuple[bytes, dict[str, str], bool]]:
    """Each way of breaking a multipart request: (body, headers to override, close after)."""
    return {
        "truncated before the closing boundary": (body[:-40], {}, False),
        "no boundary in the content type": (body, {"Content-Type": "multipart/form-data"}, False),
        "garbage bytes": (bytes(range(256)) * 20, {}, False),
        "a part without a name": (body.replace(f'name="{field}"; '.encode(), b""), {}, False),
        "Content-Length shorter than the body": (
            body,
            {"Content-Length": str(len(body) - 60)},
            False,
        ),
        "Content-Length longer than the body": (
            body,
            {"Content-Length": str(len(body) + 100)},
            True,
        ),
        "Content-Length not a number": (body, {"Content-Length": "12abc"}, False),
    }


# What each answers: the form re-renders with its errors when it can still read fields, the
# 400 page when it cannot; the chat's file field is missing (422), or the body unreadable (400).
# A body shorter than its Content-Length whose multipart is nevertheless whole (the client
# closed right after the last boundary) is read to its end: the chat takes the file, the form
# keeps it while it is corrected (as for any form sent back); neither opens a case.
FORM_ANSWERS = {
    "truncated before the closing boundary": (400, "Nadie me ha llamado", 0),
    "no boundary in the content type": (400, "The request could not be read", 0),
    "garbage bytes": (400, "The request could not be read", 0),
    "a part without a name": (400, "Nadie me ha llamado", 0),
    "Content-Length shorter than the body": (400, "Nadie me ha llamado", 0),
    "Content-Length longer than the body": (400, "This field is required.", 1),
    "Content-Length not a number": (400, "", 0),
}
CHAT_ANSWERS = {
    "truncated before the closing boundary": (422, "This field is required.", 0),
    "no boundary in the content type": (
        400,
        "The request body is not valid multipart form data.",
        0,
    ),
    "garbage bytes": (400, "The request body is not valid multipart form data.", 0),
    "a part without a name": (422, "This field is required.", 0),
    "Content-Length shorter than the body": (422, "This field is required.", 0),
    "Content-Length longer than the body": (200, '"name": "bill.pdf"', 1),
    "Content-Length not a number": (400, "", 0),
}


@pytest.mark.parametrize("case", list(FORM_ANSWERS))
def test_malformed_multipart_to_the_form_is_a_400_and_harms_nobody(server, case):
    headers, fields = server.form()
    body = multipart(fields, {"attachments": ("bill.pdf", PDF_BYTES)})
    body, overrides, close_after = _malformed(body, "attachments")[case]
    before = server.stored()
    answer = server.send(
        "POST", "/complaints/new", body, {**headers, **overrides}, close_after=close_after
    )
    status, says, kept = FORM_ANSWERS[case]
    assert answer.status == status, answer.text[:500]
    assert says in answer.text
    server.assert_unharmed(before, intake_pendingupload=kept, files=kept)


@pytest.mark.parametrize("case", list(CHAT_ANSWERS))
def test_malformed_multipart_to_the_chat_is_refused_and_harms_nobody(server, case):
    path, headers = server.chat()
    body = multipart({}, {"file": ("bill.pdf", PDF_BYTES)})
    body, overrides, close_after = _malformed(body, "file")[case]
    before = server.stored()
    answer = server.send("POST", path, body, {**headers, **overrides}, close_after=close_after)
    status, says, kept = CHAT_ANSWERS[case]
    assert answer.status == status, answer.text[:500]
    assert says in answer.text
    server.assert_unharmed(before, assistant_chatupload=kept, files=kept)


class Drip:
    """Connections that send a request one byte a second after `opening`, until closed."""

    def __init__(self, server: Server, opening: bytes, rest: bytes, count: int):
        self.sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
        self.rest = rest
        self.stopped = threading.Event()
        for sock in self.sockets:
            sock.sendall(opening)
            threading.Thread(target=self._drip, args=(sock,), daemon=True).start()

    def _drip(self, sock: socket.socket) -> None:
        for byte in self.rest:
            if self.stopped.wait(1):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        for sock in self.sockets:
            sock.close()


def normal_client(server: Server, complaints: int = 5, limit: float = 2) -> list[float]:
    """Ana files complaints one after another while the slow clients hang on; each must be
    answered within `limit` seconds (the first one that is not ends the run)."""
    took = []
    for _ in range(complaints):
        started = time.monotonic()
        try:
            answer = server.submit_complaint(timeout=limit)
        except TimeoutError:
            return [*took, limit]
        assert answer.status == 201, answer.text
        took.append(time.monotonic() - started)
    return took


def normal_client_beside(server: Server, drip: Drip) -> list[float]:
    """The normal client's times while the slow clients hang on; then they leave."""
    try:
        time.sleep(1.5)
        return normal_client(server)
    finally:
        after_the_slow_clients_leave(server, drip)


def after_the_slow_clients_leave(server: Server, drip: Drip) -> None:
    drip.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if server.submit_complaint(timeout=5).status == 201:
                return
        except TimeoutError:
            pass
        assert time.monotonic() < deadline, "the server did not recover from the slow clients"


SLOW = 8  # enough that every web process gets some, whichever takes each connection


def test_slow_headers_do_not_hold_up_other_clients(server):
    # Given eight clients sending their request line and headers one byte a second
    opening = f"POST /complaints/new HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
    drip = Drip(server, opening, b"X-Padding: " + b"a" * 100, SLOW)
    # When Ana files five complaints meanwhile
    took = normal_client_beside(server, drip)
    # Then each is answered within two seconds (the server reads headers off the Python threads)
    assert len(took) == 5
    assert max(took) < 2, took


# Not strict: which web process takes each connection is the kernel's choice, and a run where
# one process got no slow client would pass by luck.
@pytest.mark.xfail(
    strict=False,
    reason=(
        "granian hands a request to the web process's Python thread once its headers are in, "
        "and the thread then waits for the body with no time limit (granian has no body read "
        "timeout: emmett-framework/granian#728, wontfix); with one thread per process, a few "
        "slow senders stall every web process. Needs request buffering in front (a reverse "
        "proxy) or the ASGI interface, whose Django handler reads the body before the thread."
    ),
)
def test_slow_bodies_do_not_hold_up_other_clients(server):
    # Given eight chats' uploads whose headers arrived and whose body comes one byte a second
    path, headers = server.chat()
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Length: 100000"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    opening = ("\r\n".join(head) + "\r\n\r\n").encode()
    drip = Drip(server, opening, multipart({}, {"file": ("slow.pdf", PDF_BYTES)}), SLOW)
    # When Ana files five complaints meanwhile
    took = normal_client_beside(server, drip)
    # Then each is answered within two seconds
    assert len(took) == 5
    assert max(took) < 2, took
