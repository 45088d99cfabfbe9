"""Webhook endpoints managed over the API: Wendy, who runs the company's integrations, registers
her data warehouse's receiver with a webhooks:manage token, reads its secret once, pings it,
reads the delivery log, redelivers, rotates the secret and deletes the endpoint. Ana's agent
token (cases scopes only) and Otto's token (the scope, but no permission) are refused; bad
input is answered 422 in words, unknown ids 404, never 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from concilia.accounts.models import ApiToken, Scope
from concilia.core.events import EventType, emit
from concilia.integrations.tests.receiver import Receiver
from concilia.integrations.webhooks import delivery
from concilia.integrations.webhooks.models import Delivery, DeliveryStatus, Endpoint

pytestmark = pytest.mark.django_db

API = "/api/v1/webhooks"
MANAGE = [Scope.WEBHOOKS_MANAGE]
PERMISSIONS = (
    "view_endpoint",
    "add_endpoint",
    "change_endpoint",
    "delete_endpoint",
    "view_delivery",
    "change_delivery",
)


def call(client: Client, raw: str | None, method: str, path: str, body: Any = None) -> Any:
    headers = {"HTTP_ACCEPT_LANGUAGE": "en"}
    if raw:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    send = getattr(client, method)
    if method in ("get", "delete"):
        return send(API + path, **headers)
    return send(API + path, body or {}, content_type="application/json", **headers)


@pytest.fixture
def wendy(django_user_model):
    """Wendy runs the integrations: she may manage webhooks in the admin, and so by API."""
    user = django_user_model.objects.create_user("wendy", "wendy@company.test", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="integrations", codename__in=PERMISSIONS)
    )
    return user


@pytest.fixture
def token(wendy) -> str:
    return ApiToken.issue(user=wendy, name="Warehouse setup", scopes=MANAGE)[1]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the warehouse's receiver is on loopback here
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def registered(client, token, receiver) -> dict[str, Any]:
    """Wendy's warehouse receives case openings and closings; its secret is set from the answer."""
    response = call(
        client,
        token,
        "post",
        "/endpoints",
        {
            "url": receiver.url,
            "events": ["case.closed", "case.created"],
            "description": "Warehouse",
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()
    receiver.secret = created["secret"]
    return created


# --- endpoints ----------------------------------------------------------------------------


def test_an_endpoint_is_registered_and_its_secret_shown_only_once(client, token, registered):
    endpoint = Endpoint.objects.get()
    assert registered == {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": "Warehouse",
        "events": ["case.created", "case.closed"],
        "active": True,
        "created_at": registered["created_at"],
        "created_by": "wendy",
        "secret_rotated_at": None,
        "secret": endpoint.secret,
    }
    assert registered["secret"].startswith("whsec_")

    listed = call(client, token, "get", "/endpoints")
    one = call(client, token, "get", f"/endpoints/{endpoint.pk}")
    assert listed.status_code == one.status_code == 200
    assert listed.json() == [one.json()]
    assert "secret" not in one.json()
    assert registered["secret"] not in listed.content.decode() + one.content.decode()

    # The admin's history of the endpoint shows who registered it.
    (entry,) = LogEntry.objects.filter(object_id=str(endpoint.pk))
    assert (entry.user.username, entry.action_flag) == ("wendy", ADDITION)


def test_the_event_types_are_listed_for_choosing(client, token):
    response = call(client, token, "get", "/event-types")
    assert response.status_code == 200
    assert response.json()[0] == {"type": "case.created", "label": "Case created"}
    assert [e["type"] for e in response.json()] == EventType.values


def test_an_endpoint_is_changed_in_part_and_deleted(client, token, registered):
    path = f"/endpoints/{registered['id']}"
    response = call(client, token, "patch", path, {"active": False, "description": "Old DWH"})
    assert response.status_code == 200
    assert (response.json()["active"], response.json()["description"]) == (False, "Old DWH")
    assert response.json()["events"] == ["case.created", "case.closed"]  # unchanged
    entry = LogEntry.objects.filter(action_flag=CHANGE).get()
    assert entry.get_change_message() == "Changed description and active."

    assert call(client, token, "delete", path).status_code == 204
    assert call(client, token, "get", path).status_code == 404
    assert not Endpoint.objects.exists()
    assert LogEntry.objects.filter(action_flag=DELETION, object_id=str(registered["id"])).exists()


def test_rotating_the_secret_signs_from_then_on_with_the_new_one(
    client, token, registered, receiver, run_tasks
):
    response = call(client, token, "post", f"/endpoints/{registered['id']}/rotate-secret")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != registered["secret"] and new == Endpoint.objects.get().secret
    assert response.json()["secret_rotated_at"] is not None

    call(client, token, "post", f"/endpoints/{registered['id']}/ping")
    run_tasks()
    receiver.secret = new  # the receiver is told the new secret
    call(client, token, "post", f"/endpoints/{registered['id']}/ping")
    run_tasks()

    assert [(r.kind, r.signed) for r in receiver.received] == [("ping", False), ("ping", True)]


# --- ping, delivery log, redelivery -------------------------------------------------------


def test_a_ping_reaches_the_receiver_signed_and_shows_in_the_delivery_log(
    client, token, registered, receiver, run_tasks
):
    response = call(client, token, "post", f"/endpoints/{registered['id']}/ping")
    assert response.status_code == 202
    queued = response.json()
    assert (queued["type"], queued["status"], queued["attempt_log"]) == ("ping", "pending", [])

    run_tasks()

    (ping,) = receiver.received
    assert ping.signed and ping.kind == "ping"
    assert ping.body["data"] == {"endpoint": registered["id"], "events": registered["events"]}
    log = call(client, token, "get", f"/endpoints/{registered['id']}/deliveries").json()
    (item,) = log["items"]
    assert (item["id"], item["event_id"], item["status"]) == (
        queued["id"],
        ping.event_id,
        "delivered",
    )
    (attempt,) = item["attempt_log"]
    assert (attempt["number"], attempt["status_code"], attempt["error"], attempt["ok"]) == (
        1,
        200,
        "",
        True,
    )
    assert attempt["response_ms"] >= 0 and item["last_response_ms"] == attempt["response_ms"]
    assert log["next"] is None


def test_a_failed_delivery_is_sent_again_on_request(client, token, registered, receiver, run_tasks):
    receiver.answer = 500
    queued = call(client, token, "post", f"/endpoints/{registered['id']}/ping").json()
    run_tasks()
    path = f"/endpoints/{registered['id']}/deliveries"
    (failed,) = call(client, token, "get", path).json()["items"]
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 1, 500)

    receiver.answer = 200
    response = call(client, token, "post", f"{path}/{queued['id']}/redeliver")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    run_tasks()

    (item,) = call(client, token, "get", path).json()["items"]
    assert item["status"] == "delivered"
    assert [(a["number"], a["status_code"], a["ok"]) for a in item["attempt_log"]] == [
        (2, 200, True),
        (1, 500, False),
    ]
    assert [r.status for r in receiver.received] == [500, 200]


def test_an_inactive_endpoint_is_not_pinged(client, token, registered):
    call(client, token, "patch", f"/endpoints/{registered['id']}", {"active": False})
    response = call(client, token, "post", f"/endpoints/{registered['id']}/ping")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "This endpoint is inactive: activate it before sending it anything."
    )
    assert not Delivery.objects.exists()


def test_the_delivery_log_is_paged_filtered_and_read_in_constant_queries(
    client, token, registered, receiver
):
    endpoint = Endpoint.objects.get()
    path = f"/endpoints/{endpoint.pk}/deliveries"

    def events(count: int) -> None:
        for n in range(count):
            emit(EventType.CASE_CREATED, subject=f"RC-{n}", payload={"case": f"RC-{n}"})
        delivery.dispatch()

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert call(client, token, "get", url).status_code == 200
        return len(captured)

    events(1)
    receiver.answer = 503  # every delivery gets an attempt in its log
    delivery.deliver_due(endpoint_id=endpoint.pk)
    few = queries(path)
    events(5)
    delivery.deliver_due(endpoint_id=endpoint.pk)
    assert queries(path) == few

    first = call(client, token, "get", f"{path}?limit=4").json()
    rest = call(client, token, "get", f"{path}?limit=4&after={first['next']}").json()
    ids = [d["id"] for d in first["items"] + rest["items"]]
    assert ids == sorted(Delivery.objects.values_list("pk", flat=True), reverse=True)
    assert rest["next"] is None
    Delivery.objects.filter(pk=ids[0]).update(status=DeliveryStatus.DEAD)
    dead = call(client, token, "get", f"{path}?status=dead").json()["items"]
    assert [d["id"] for d in dead] == [ids[0]]

    response = call(client, token, "get", f"{path}?status=lost&limit=1000")
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"status", "limit"}


# --- refusals -----------------------------------------------------------------------------


def errors(response: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in response.json()["errors"]:
        found.setdefault(error["field"], []).append(error["message"])
    return found


def test_unknown_events_and_non_http_urls_are_refused_in_words(client, token):
    response = call(
        client,
        token,
        "post",
        "/endpoints",
        {"url": "ftp://warehouse.example.com/in", "events": ["case.created", "case.deleted"]},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "The request has errors."
    assert errors(response) == {
        "events": [
            "Unknown events: case.deleted. Known events: " + ", ".join(EventType.values) + "."
        ],
    }  # the events are checked first; the URL once they are right

    response = call(
        client,
        token,
        "post",
        "/endpoints",
        {"url": "ftp://warehouse.example.com/in", "events": [], "description": "a\x00b"},
    )
    assert errors(response) == {"events": ["Choose at least one event."]}
    response = call(
        client,
        token,
        "post",
        "/endpoints",
        {
            "url": "ftp://warehouse.example.com/in",
            "events": ["case.created"],
            "description": "\x00",
        },
    )
    assert errors(response) == {
        "url": ["Enter a URL that starts with http:// or https://."],
        "description": ["Null characters are not allowed."],
    }
    response = call(client, token, "post", "/endpoints", {"url": "https://", "events": "x"})
    assert response.status_code == 422
    assert errors(response) == {"events": ["Enter a list."]}
    response = call(
        client, token, "post", "/endpoints", {"url": "https://", "events": ["case.created"]}
    )
    assert errors(response) == {"url": ["Enter a valid URL."]}
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "https://api.localhost/hooks",
        "http://10.0.0.5/hooks",
        "http://192.168.1.20/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
    ],
)
def test_private_and_loopback_addresses_are_refused(client, token, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = call(client, token, "post", "/endpoints", {"url": url, "events": ["case.created"]})
    assert response.status_code == 422
    (message,) = errors(response)["url"]
    assert message.endswith(
        "is a private, loopback or other non-public address: webhooks are only sent to "
        "addresses on the internet."
    )
    assert not Endpoint.objects.exists()


def test_a_deployment_may_allow_internal_receivers(client, token, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    body = {"url": "https://hooks.warehouse.example.com/in", "events": ["case.created"]}
    created = call(client, token, "post", "/endpoints", body)
    assert created.status_code == 201
    path = f"/endpoints/{created.json()['id']}"
    moved = call(client, token, "patch", path, {"url": "http://10.1.2.3/in"})
    assert moved.status_code == 422
    assert Endpoint.objects.get().url == body["url"]

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert call(client, token, "patch", path, {"url": "http://10.1.2.3/in"}).status_code == 200
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False  # an unchanged URL is kept when other fields change
    assert call(client, token, "patch", path, {"active": False}).status_code == 200


def test_a_token_without_the_scope_is_refused(client, agent, registered):
    cases_token = ApiToken.issue(user=agent, name="Ana's CRM", scopes=[Scope.CASES_READ])[1]
    for method, path in [
        ("get", "/endpoints"),
        ("post", "/endpoints"),
        ("delete", f"/endpoints/{registered['id']}"),
        ("post", f"/endpoints/{registered['id']}/rotate-secret"),
    ]:
        response = call(client, cases_token, method, path)
        assert response.status_code == 403, path
        assert (
            response.json()["detail"] == "This token lacks the scope webhooks:manage needed here."
        )
    assert call(client, None, "get", "/endpoints").status_code == 401
    assert Endpoint.objects.get().secret == registered["secret"]


def test_the_scope_is_not_enough_without_the_permission(client, django_user_model, registered):
    otto = django_user_model.objects.create_user("otto", is_staff=True)
    otto.user_permissions.add(Permission.objects.get(codename="view_endpoint"))
    raw = ApiToken.issue(user=otto, name="Otto", scopes=MANAGE)[1]

    assert call(client, raw, "get", "/endpoints").status_code == 200
    response = call(client, raw, "delete", f"/endpoints/{registered['id']}")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "This token's user may not do this: the permission integrations.delete_endpoint is missing."
    )
    assert call(client, raw, "get", f"/endpoints/{registered['id']}/deliveries").status_code == 403
    assert Endpoint.objects.exists()


def test_unknown_ids_are_not_found(client, token, registered):
    other = Endpoint.objects.create(url="https://other.example.com/in", events=["case.created"])
    ping = call(client, token, "post", f"/endpoints/{other.pk}/ping").json()
    mine = f"/endpoints/{registered['id']}"
    for method, path in [
        ("get", "/endpoints/999999"),
        ("get", f"/endpoints/{2**70}"),
        ("patch", "/endpoints/0"),
        ("delete", "/endpoints/-3"),
        ("post", "/endpoints/999999/ping"),
        ("get", "/endpoints/999999/deliveries"),
        ("post", f"{mine}/deliveries/{ping['id']}/redeliver"),  # another endpoint's delivery
        ("post", f"{mine}/deliveries/{2**70}/redeliver"),
    ]:
        response = call(client, token, method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] in (
            "There is no webhook endpoint with this id.",
            "This endpoint has no delivery with this id.",
        )
    assert call(client, token, "get", "/endpoints/abc").status_code == 422


def test_the_openapi_schema_lists_the_webhook_routes(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths["/api/v1/webhooks/endpoints"]) == {"get", "post"}
    assert set(paths["/api/v1/webhooks/endpoints/{endpoint_id}"]) == {"get", "patch", "delete"}
    for route in (
        "/api/v1/webhooks/event-types",
        "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret",
        "/api/v1/webhooks/endpoints/{endpoint_id}/ping",
        "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries",
        "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    ):
        assert route in paths
    created = paths["/api/v1/webhooks/endpoints"]["post"]["responses"]
    assert {"201", "403", "422"} <= set(created)


def test_the_admin_refuses_the_same_addresses_in_its_form(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = admin_client.post(
        reverse("admin:integrations_endpoint_add"),
        {"url": "http://192.168.1.20/hooks", "events": ["case.created"], "active": "on"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"] == [
        "192.168.1.20 is a private, loopback or other non-public address: webhooks are only "
        "sent to addresses on the internet."
    ]
    assert not Endpoint.objects.exists()
