"""A customer driving the chat API, for the assistant's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client


class Chat:
    """One customer in one conversation, through /api/v1/conversations."""

    def __init__(self, client: Client, language: str = "en", channel: str = "api"):
        self.client = client
        response = client.post(
            "/api/v1/conversations",
            {"language": language, "channel": channel},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        data = response.json()
        self.id = data["id"]
        self.token = data["token"]
        self.status = data["status"]
        self.log: list[dict[str, Any]] = list(data["messages"])
        self.last: list[dict[str, Any]] = list(data["messages"])

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Conversation-Token": self.token}

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(
            f"/api/v1/conversations/{self.id}{path}",
            payload,
            content_type="application/json",
            headers=self.headers,
        )
        assert response.status_code == 200, response.content
        data = response.json()
        self.status = data["status"]
        self.case_reference = data["case_reference"]
        self.last = [m for m in data["messages"] if m["author"] != "customer"]
        self.log += data["messages"]
        return data

    def say(self, text: str) -> str:
        self._post("/messages", {"text": text})
        return self.answer

    def press(self, value: str) -> str:
        offered = self.choices
        assert value in offered, f"{value!r} not offered: {offered}"
        self._post("/messages", {"choice": value})
        return self.answer

    def send_file(self, name: str, content: bytes) -> str:
        from django.core.files.uploadedfile import SimpleUploadedFile

        response = self.client.post(
            f"/api/v1/conversations/{self.id}/attachments",
            {"file": SimpleUploadedFile(name, content)},
            headers=self.headers,
        )
        assert response.status_code == 200, response.content
        data = response.json()
        self.status = data["status"]
        self.last = [m for m in data["messages"] if m["author"] != "customer"]
        self.log += data["messages"]
        return self.answer

    @property
    def answer(self) -> str:
        """Everything the assistant said in answer to the last message."""
        return "\n".join(m["body"] for m in self.last)

    @property
    def choices(self) -> list[str]:
        return [c["value"] for c in (self.last[-1]["choices"] if self.last else [])]

    @property
    def expects(self) -> str:
        return self.last[-1]["expects"] if self.last else ""

    def follow(self) -> str:
        """Read what the assistant added since (as the widget polls): it belongs to the answer to
        the last message."""
        seen = max(m["seq"] for m in self.log)
        response = self.client.get(
            f"/api/v1/conversations/{self.id}?after={seen}", headers=self.headers
        )
        assert response.status_code == 200, response.content
        data = response.json()
        self.status = data["status"]
        self.case_reference = data["case_reference"]
        self.last += [m for m in data["messages"] if m["author"] != "customer"]
        self.log += data["messages"]
        return self.answer

    def wait_for_decision(self, run_jobs: Callable[[], None]) -> str:
        """The policies decide a new case after the reply: the customer is told to wait, the
        job runs (`run_tasks`), and its answer follows in the chat."""
        assert self.expects == "wait", self.answer
        run_jobs()
        self.follow()
        assert self.expects != "wait", self.answer
        return self.answer
