"""The complaints API: anonymous and token calls, errors as JSON per field, idempotency, access."""

from __future__ import annotations

import base64

import pytest
from django.core import mail
from django.test import Client

from concilia.cases.attachments import check_file
from concilia.cases.models import Attachment, Case, CaseEvent
from conftest import EXE_BYTES, PNG_BYTES

pytestmark = pytest.mark.django_db

URL = "/api/v1/complaints"


def post_json(client: Client, body, token: str | None = None, **headers):
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post(URL, body, content_type="application/json", **headers)


def test_anonymous_complaint_returns_reference_and_tracking_link(client, api_payload, run_tasks):
    response = post_json(client, api_payload(), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 201
    body = response.json()
    case = Case.objects.get()
    assert body["reference"] == case.reference
    assert body["status"] == "not_started"
    assert body["tracking_url"] == f"http://testserver/track?reference={case.reference}"
    assert (case.channel, case.language, case.customer.email) == ("api", "en", "james@example.com")
    assert case.privacy_consent is not None and case.privacy_consent.channel == "api"
    assert CaseEvent.objects.get(case=case).actor_kind == "customer"
    run_tasks()
    assert case.reference in mail.outbox[0].subject


def test_token_complaints_are_recorded_as_the_integration(client, api_payload, integration_token):
    response = post_json(client, api_payload(language="es"), integration_token)
    assert response.status_code == 201
    case = Case.objects.get()
    event = CaseEvent.objects.get(case=case)
    assert (event.actor_kind, event.actor_user.username) == ("integration", "shop")
    assert case.language == "es"


def test_an_unknown_token_is_refused_not_treated_as_anonymous(client, api_payload):
    response = post_json(client, api_payload(), "cnc_not-a-real-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert Case.objects.count() == 0


def test_validation_errors_name_each_field_in_the_callers_language(client, api_payload):
    payload = api_payload(email="nope", description="short", order_number="", amount=None)
    response = post_json(client, payload, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert set(errors) == {"email", "description", "order_number", "amount"}
    assert errors["email"]["message"] == "Introduzca una dirección de correo electrónico válida."
    assert errors["order_number"]["code"] == "required_for_category"
    assert Case.objects.count() == 0


def test_wrong_types_and_missing_fields_are_422_not_500(client, api_payload):
    payload = api_payload(amount="twelve", accept_privacy="maybe", purchase_date="yesterday")
    del payload["name"]
    response = post_json(client, payload, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"amount", "accept_privacy", "purchase_date", "name"}
    assert fields["name"] == "This field is required."


@pytest.mark.parametrize("body", ["{not json", "[]", "null", '"text"', "{}"])
def test_malformed_bodies_get_a_json_4xx(client, body):
    response = client.post(URL, body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


def test_privacy_notice_must_be_accepted(client, api_payload):
    response = post_json(client, api_payload(accept_privacy=False))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["accept_privacy"]
    response = post_json(client, api_payload(privacy_notice_version="1999-01"))
    assert [e["field"] for e in response.json()["errors"]] == ["privacy_notice_version"]


def test_a_retried_call_with_the_same_idempotency_key_creates_one_case(
    client, api_payload, integration_token
):
    first = post_json(
        client, api_payload(), integration_token, HTTP_IDEMPOTENCY_KEY="order-55120-1"
    )
    again = post_json(
        client, api_payload(), integration_token, HTTP_IDEMPOTENCY_KEY="order-55120-1"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["reference"] == again.json()["reference"]
    assert Case.objects.count() == 1
    conflict = post_json(
        client,
        api_payload(description="A different complaint entirely."),
        integration_token,
        HTTP_IDEMPOTENCY_KEY="order-55120-1",
    )
    assert conflict.status_code == 409
    assert Case.objects.count() == 1
    fresh = post_json(
        client, api_payload(), integration_token, HTTP_IDEMPOTENCY_KEY="order-55120-2"
    )
    assert fresh.status_code == 201 and Case.objects.count() == 2


def test_attachments_by_api_are_checked_by_content(client, api_payload):
    good = {"filename": "caja.png", "content_base64": base64.b64encode(PNG_BYTES).decode()}
    bad = {"filename": "caja2.png", "content_base64": base64.b64encode(EXE_BYTES).decode()}
    response = post_json(client, api_payload(attachments=[good, bad]))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["attachments[1]"]
    assert response.json()["errors"][0]["code"] == "executable"
    broken = post_json(
        client, api_payload(attachments=[{"filename": "a.png", "content_base64": "@@@"}])
    )
    assert broken.json()["errors"][0]["code"] == "invalid_base64"
    assert Case.objects.count() == 0
    assert post_json(client, api_payload(attachments=[good])).status_code == 201
    # stored as checked: re-encoded from its pixels, without metadata
    assert Attachment.objects.get().file.read() == check_file("caja.png", PNG_BYTES).content


def test_anonymous_calls_are_rate_limited_like_the_form(
    client, api_payload, complaint_data, settings, integration_token
):
    settings.CONCILIA_ANON_SUBMISSION_RATE = "2/hour"
    assert post_json(client, api_payload()).status_code == 201
    # The web form and the API share one budget per address.
    assert client.post("/complaints/new", complaint_data()).status_code == 302
    limited = post_json(client, api_payload())
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert post_json(client, api_payload(), integration_token).status_code == 201


def test_staff_tokens_read_a_complaint(client, api_payload, staff_token, open_case):
    case = open_case()
    response = client.get(
        f"{URL}/{case.reference.lower()}", HTTP_AUTHORIZATION=f"Bearer {staff_token}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["reference"] == case.reference
    assert body["customer"]["email"] == "lucia@example.com"
    assert body["status"] == "not_started" and body["category"] == "other"


def test_reading_needs_a_token_that_may_view_cases(client, integration_token, open_case):
    case = open_case()
    assert client.get(f"{URL}/{case.reference}").status_code == 401
    forbidden = client.get(
        f"{URL}/{case.reference}", HTTP_AUTHORIZATION=f"Bearer {integration_token}"
    )
    assert forbidden.status_code == 403


def test_unknown_or_malformed_references_are_404(client, staff_token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {staff_token}"}
    assert client.get(f"{URL}/RC-2026-999999-0", **auth).status_code == 404
    assert client.get(f"{URL}/garbage", **auth).status_code == 404


def test_reference_data_and_schema_are_published(client):
    categories = client.get("/api/v1/categories", HTTP_ACCEPT_LANGUAGE="en").json()
    refund = next(c for c in categories if c["code"] == "refund")
    assert refund["fields"]["order_number"] == "required"
    assert refund["name"] == "Refund"
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/complaints" in schema["paths"]
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/privacy-notice").json()["version"]


def test_a_revoked_token_stops_working(client, api_payload, integration_token):
    from concilia.accounts.models import ApiToken

    assert post_json(client, api_payload(), integration_token).status_code == 201
    ApiToken.authenticate(integration_token).revoke()
    assert post_json(client, api_payload(), integration_token).status_code == 401
