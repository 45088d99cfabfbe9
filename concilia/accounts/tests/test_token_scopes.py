"""API tokens: scopes declared per endpoint, revocation, rotation, last use and per-token rate limits.

Ana is an agent of Customer care (concilia/cases/tests/conftest.py); her CRM calls the API with
tokens of different scopes. The shop's integration files complaints for customers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from concilia.accounts.models import DEFAULT_SCOPES, ApiToken, Scope, TokenRevoked
from concilia.cases.models import Case, Message
from concilia.core import throttling
from concilia.core.memo import forget_all

API = "/api/v1"
READ = [Scope.CASES_READ]
READ_WRITE = [Scope.CASES_READ, Scope.CASES_WRITE]


def call(client: Client, raw: str | None, method: str, path: str, body: Any = None) -> Any:
    headers = {"HTTP_ACCEPT_LANGUAGE": "en"}
    if raw:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    if method == "get":
        return client.get(API + path, **headers)
    return client.post(API + path, body or {}, content_type="application/json", **headers)


def token_for(user, scopes) -> str:
    return ApiToken.issue(user=user, name="Ana's CRM", scopes=scopes)[1]


# --- scopes -------------------------------------------------------------------------------


def test_a_read_only_token_reads_cases_but_may_not_reply(client, open_case, ana):
    case = open_case()
    raw = token_for(ana, READ)
    assert call(client, raw, "get", "/cases").status_code == 200
    assert call(client, raw, "get", f"/cases/{case.reference}").status_code == 200

    response = call(client, raw, "post", f"/cases/{case.reference}/replies", {"body": "Hola."})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "This token lacks the scope cases:write needed here.",
        "errors": [
            {
                "field": "",
                "code": "missing_scope",
                "message": "Issue or edit a token with the scope cases:write.",
            }
        ],
    }
    assert not Message.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.version == 1


def test_a_write_token_may_reply(client, open_case, ana):
    case = open_case()
    raw = token_for(ana, READ_WRITE)

    response = call(client, raw, "post", f"/cases/{case.reference}/replies", {"body": "Hola."})

    assert response.status_code == 200, response.content
    assert list(Message.objects.filter(case=case).values_list("body", flat=True)) == ["Hola."]


def test_a_token_without_cases_read_may_not_read(client, open_case, ana):
    case = open_case()
    raw = token_for(ana, [Scope.COMPLAINTS_WRITE])
    for path in ("/cases", f"/cases/{case.reference}", f"/complaints/{case.reference}"):
        response = call(client, raw, "get", path)
        assert response.status_code == 403, path
        assert response.json()["detail"] == "This token lacks the scope cases:read needed here."


def test_filing_a_complaint_with_a_token_needs_complaints_write(
    client, api_payload, django_user_model
):
    shop = django_user_model.objects.create_user("shop")
    reader = token_for(shop, READ)
    writer = token_for(shop, [Scope.COMPLAINTS_WRITE])

    refused = call(client, reader, "post", "/complaints", api_payload())
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This token lacks the scope complaints:write needed here."
    assert Case.objects.count() == 0

    assert call(client, writer, "post", "/complaints", api_payload()).status_code == 201
    # and the anonymous, form-like submission is unchanged
    assert call(client, None, "post", "/complaints", api_payload()).status_code == 201
    assert Case.objects.count() == 2


def test_issue_defaults_to_the_scopes_tokens_had_before_scopes_existed(ana):
    token, _raw = ApiToken.issue(user=ana, name="CRM")
    assert token.scopes == ["cases:read", "cases:write", "complaints:write"]
    assert list(DEFAULT_SCOPES) == token.scopes
    token, _raw = ApiToken.issue(user=ana, name="CRM", scopes=["cases:write", "cases:read"])
    assert token.scopes == ["cases:read", "cases:write"]


# --- revocation and rotation --------------------------------------------------------------


def test_a_revoked_token_gets_401(client, ana):
    token, raw = ApiToken.issue(user=ana, name="CRM", scopes=READ)
    assert call(client, raw, "get", "/cases").status_code == 200

    token.revoke()

    response = call(client, raw, "get", "/cases")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_rotation_stops_the_old_token_and_the_new_one_has_the_same_scopes(client, ana):
    old, old_raw = ApiToken.issue(user=ana, name="CRM", scopes=READ)
    assert call(client, old_raw, "get", "/cases").status_code == 200

    new, new_raw = old.rotate()

    assert call(client, old_raw, "get", "/cases").status_code == 401
    assert call(client, new_raw, "get", "/cases").status_code == 200
    assert (new.user, new.name, new.scopes) == (ana, "CRM", ["cases:read"])
    assert new_raw != old_raw and new.digest != old.digest
    old.refresh_from_db()
    assert old.revoked_at is not None
    with pytest.raises(TokenRevoked):
        old.rotate()


def test_rotation_with_a_grace_period_keeps_the_old_token_until_it_expires(client, ana, settings):
    settings.CONCILIA_TOKEN_ROTATION_GRACE_MINUTES = 30
    old, old_raw = ApiToken.issue(user=ana, name="CRM", scopes=READ)
    before = timezone.now()

    _new, new_raw = old.rotate()

    old.refresh_from_db()
    assert old.revoked_at is None
    assert (
        before + dt.timedelta(minutes=30)
        <= old.expires_at
        <= timezone.now() + dt.timedelta(minutes=30)
    )
    assert call(client, old_raw, "get", "/cases").status_code == 200
    assert call(client, new_raw, "get", "/cases").status_code == 200
    # When the grace is over
    ApiToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    forget_all()
    assert call(client, old_raw, "get", "/cases").status_code == 401
    assert call(client, new_raw, "get", "/cases").status_code == 200


# --- last use -----------------------------------------------------------------------------


def test_last_use_is_written_at_most_once_a_minute(client, ana):
    token, raw = ApiToken.issue(user=ana, name="CRM", scopes=READ)
    assert token.last_used_at is None
    call(client, raw, "get", "/cases")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None

    call(client, raw, "get", "/cases")
    forget_all()  # even a freshly read token skips the write within the minute
    call(client, raw, "get", "/cases")
    token.refresh_from_db()
    assert token.last_used_at == first

    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=an_hour_ago)
    forget_all()
    call(client, raw, "get", "/cases")
    token.refresh_from_db()
    assert token.last_used_at > first


# --- rate limits --------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


def test_a_token_over_its_rate_gets_429_with_retry_after_then_works_again(
    client, ana, settings, monkeypatch
):
    settings.CONCILIA_TOKEN_RATE = "2/minute"
    clock = Clock(6_000_000 + 15)  # 15 seconds into a minute's window
    monkeypatch.setattr(throttling, "time", clock)
    raw = token_for(ana, READ)
    other = token_for(ana, READ)

    assert [call(client, raw, "get", "/cases").status_code for _ in range(2)] == [200, 200]
    refused = call(client, raw, "get", "/cases")

    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    assert refused.json() == {
        "detail": "This token has made too many requests; try again later.",
        "errors": [],
    }
    # each token has its own limit
    assert call(client, other, "get", "/cases").status_code == 200
    # and the next window lets the first one in again
    clock.now += 45
    assert call(client, raw, "get", "/cases").status_code == 200


# --- createtoken --------------------------------------------------------------------------


def test_createtoken_issues_a_token_with_the_scopes_asked_for(ana, capsys):
    call_command("createtoken", "ana", "--name", "CRM", "--scope", "cases:read")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.authenticate(raw)
    assert token is not None
    assert (token.user, token.name, token.scopes) == (ana, "CRM", ["cases:read"])

    call_command("createtoken", "ana")
    default = ApiToken.authenticate(capsys.readouterr().out.strip())
    assert default is not None
    assert default.scopes == ["cases:read", "cases:write", "complaints:write"]


def test_createtoken_refuses_an_unknown_scope_naming_the_valid_ones(ana):
    with pytest.raises(CommandError) as error:
        call_command("createtoken", "ana", "--scope", "cases:read", "--scope", "cases:delete")
    assert str(error.value) == (
        "Unknown scope 'cases:delete'; valid scopes: "
        "cases:read, cases:write, complaints:write, webhooks:manage"
    )
    assert not ApiToken.objects.exists()


def test_createtoken_rotates_a_token_by_its_prefix(ana, capsys):
    old, old_raw = ApiToken.issue(user=ana, name="CRM", scopes=READ)

    call_command("createtoken", "--rotate", old.prefix)

    new = ApiToken.authenticate(capsys.readouterr().out.strip())
    assert new is not None and new.pk != old.pk
    assert (new.name, new.scopes) == ("CRM", ["cases:read"])
    assert ApiToken.authenticate(old_raw) is None
    with pytest.raises(CommandError):
        call_command("createtoken", "--rotate", old.prefix)


# --- the admin ----------------------------------------------------------------------------


CHANGELIST = "/admin/accounts/apitoken/"


def test_the_admin_issues_a_token_and_shows_it_once(admin_client, ana):
    response = admin_client.post(
        f"{CHANGELIST}add/",
        {"name": "Shop", "user": ana.pk, "scopes": ["complaints:write"]},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    raw = response.context["issued"][0][1]
    assert raw.startswith(token.prefix) and raw in response.content.decode()
    assert ApiToken.authenticate(raw) == token
    assert token.scopes == ["complaints:write"]
    # not kept anywhere the browser or the next page could find it again
    assert "messages" not in response.cookies
    listing = admin_client.get(CHANGELIST).content.decode()
    change = admin_client.get(f"{CHANGELIST}{token.pk}/change/").content.decode()
    assert raw not in listing and raw not in change
    assert "complaints:write" in listing


def test_the_admin_rotates_and_revokes_tokens(admin_client, ana):
    old, old_raw = ApiToken.issue(user=ana, name="CRM", scopes=READ)
    doomed, doomed_raw = ApiToken.issue(user=ana, name="Old CRM", scopes=READ)

    rotated = admin_client.post(
        CHANGELIST, {"action": "rotate_tokens", "_selected_action": [old.pk]}
    )

    assert rotated.status_code == 200
    ((new, raw),) = rotated.context["issued"]
    assert raw in rotated.content.decode()
    assert ApiToken.authenticate(old_raw) is None
    assert ApiToken.authenticate(raw) == new
    assert (new.name, new.scopes) == ("CRM", ["cases:read"])

    revoked = admin_client.post(
        CHANGELIST, {"action": "revoke_tokens", "_selected_action": [doomed.pk]}, follow=True
    )

    assert revoked.status_code == 200
    assert ApiToken.authenticate(doomed_raw) is None
    assert ApiToken.authenticate(raw) == new
