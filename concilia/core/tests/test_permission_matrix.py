"""The permission matrix: every page, form, webhook and API operation, for every kind of person.

Who asks:
- anonymous: nobody signed in;
- customer: Lucy, signed in on the tracking pages (her one-time link), who owns the case;
- stranger: Mark, another customer signed in, who must never see Lucy's case;
- agent: Ana, staff of Customer care with the agent role (and view_case, as the demo's staff);
- supervisor: Sara, supervisor of Customer care;
- administrator: Root, a superuser in the administrator role, signed in with a second factor;
- dpo: Dora, the data-protection officer, who works no cases but reads the audit log.

What they get, per (route, method): "ok" (2xx), "redirect" (3xx elsewhere than a sign-in page),
"login" (sent to a sign-in page: the helpdesk's, the admin's or the tracking page), or the status
code of a refusal (400, 401, 403, 404, 405, 409, 422...).
Each request runs on real objects (Lucy's case, her handed-over chat, her attachment and an
internal one, a mediation party's link, a collective flag...) and is rolled back afterwards, so
no request changes what the next one sees.

Every URL pattern (django.urls) and every API operation (the OpenAPI schema) must have its row:
a new view without one fails `test_every_route_is_in_the_matrix`. To write a row, run
`CONCILIA_MATRIX_PRINT=1 .venv/bin/pytest -q -s concilia/core/tests/test_permission_matrix.py`
and check what it prints before copying it: the matrix states what must happen, not what does.
A 500 for anyone is always a failure.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from conftest import PNG_BYTES

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "customer", "stranger", "agent", "supervisor", "administrator", "dpo")
PRINT = os.environ.get("CONCILIA_MATRIX_PRINT") == "1"


# --- the people --------------------------------------------------------------------------------


def _staff(username: str, *groups: str, superuser: bool = False):
    from concilia.accounts.models import User

    user = User.objects.create_user(
        username, f"{username}@company.test", "pw", first_name=username.title(), is_staff=True
    )
    if superuser:
        user.is_superuser = True
        user.save(update_fields=["is_superuser"])
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


@dataclass
class World:
    """The real objects the URLs name, and a signed-in browser (cookies) per role."""

    objects: dict[str, Any] = field(default_factory=dict)
    cookies: dict[str, SimpleCookie] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.objects[name]
        except KeyError:
            raise AttributeError(name) from None


def _signed_in_customer(case) -> SimpleCookie:
    from concilia.customers.actions import request_sign_in_link

    link = request_sign_in_link(customer=case.customer)
    client = Client()
    response = client.post(reverse("intake:sign-in", kwargs={"token": link.token}))
    assert response.status_code == 302, response
    return client.cookies


def _signed_in_staff(user, *, second_factor: bool = False) -> SimpleCookie:
    client = Client()
    client.force_login(user)
    if second_factor:
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client.cookies


@pytest.fixture
def world(notice, settings, open_case, api_payload) -> World:
    from concilia.accounts.models import ApiToken, Scope, Team
    from concilia.assistant import actions as chat
    from concilia.assistant.models import Conversation
    from concilia.cases import actions as case_actions
    from concilia.cases.attachments import check_file
    from concilia.core.events import EventType
    from concilia.customers.actions import request_sign_in_link
    from concilia.integrations.mail.actions import store_email
    from concilia.integrations.mail.models import Mailbox
    from concilia.integrations.telegram.models import TelegramBot
    from concilia.integrations.webhooks.actions import create_endpoint, send_ping
    from concilia.resolution import mediation
    from concilia.resolution.actions import save_policy_version
    from concilia.resolution.models import CollectiveFlag
    from concilia.resolution.tests.conftest import SHOP_POLICY

    settings.CHAT_START_RATE = ""  # the matrix asks many times; the limits have their own tests
    settings.CONCILIA_SIGN_IN_RATE = ""
    settings.CONCILIA_ANON_SUBMISSION_RATE = ""
    care = Team.objects.create(code="customer-care", name_es="Atención", name_en="Care")
    Team.objects.create(code="logistics", name_es="Logística", name_en="Logistics")  # the policy's
    view_case = Permission.objects.filter(codename__in=["view_case", "change_case"])
    world = World()
    world.users = {
        "agent": _staff("ana", "Role: agent", care.group.name),
        "supervisor": _staff("sara", "Role: supervisor", care.group.name),
        "administrator": _staff("root", "Role: administrator", superuser=True),
        "dpo": _staff("dora", "Role: data-protection officer"),
    }
    for role in ("agent", "supervisor"):
        world.users[role].user_permissions.add(*view_case)

    # Lucy asked the assistant for a person: her case and her chat, handed over.
    started = chat.start_conversation(language="en", channel="page")
    for turn in (
        {"choice": "accept"},
        {"text": "I want to talk to a person, please"},
        {"text": "lucy@example.com"},
        {"text": "Lucy Grant"},
    ):
        chat.post_customer_message(conversation=started.conversation, **turn)
    conversation = Conversation.objects.select_related("case__customer").get(
        pk=started.conversation.pk
    )
    case = conversation.case
    message = case_actions.add_customer_message(
        case=case, body="Here is the photo.", files=[check_file("photo.png", PNG_BYTES)]
    )
    note = case_actions.add_internal_note(
        case=case, body="Internal: the courier's report.", author=world.users["agent"]
    )
    [internal] = case_actions._store_files(
        case=case, files=[check_file("report.png", PNG_BYTES)], message=note, uploaded_by="staff"
    )
    # Mark has a case of his own.
    other = open_case(email="mark@example.com", name="Mark Jones", language="en")
    party = mediation.invite_party(
        case=case,
        role="carrier",
        name="SEUR",
        email="claims@seur.test",
        language="en",
        actor=world.users["supervisor"],
    )
    flag = CollectiveFlag.objects.create(
        kind="product",
        key="SKU-1",
        min_customers=5,
        window_hours=48,
        first_seen_at=case.created_at,
        last_seen_at=case.created_at,
    )
    flag.cases.add(case, other)
    from concilia.resolution.models import Trend

    trend = Trend.objects.create(
        terms=["parcel", "lost"],
        case_ids=[case.pk, other.pk],
        case_count=2,
        baseline_mean=0,
        baseline_stddev=0,
        window_days=2,
    )
    policy_version = save_policy_version(
        code="shop", source=SHOP_POLICY.read_text(), author=None, publish=False
    )
    mailbox = Mailbox.objects.create(name="Web", slug="web", address="help@example.com")
    inbound = store_email(raw=b"From: a@example.org\r\nSubject: hi\r\n\r\nhello", mailbox=mailbox)
    bot = TelegramBot.objects.create(code="shop", name="Shop bot", bot_id="1", api_token="x")
    admin = world.users["administrator"]
    endpoint = create_endpoint(
        url="https://crm.example.com/h", events=EventType.values, actor=admin
    )
    world.objects = {
        "case": case,
        "other_case": other,
        "complaint": api_payload(),  # what the API's complaint form is sent
        "conversation": conversation,
        "attachment": message.attachments.get(),
        "internal_attachment": internal,
        "party_token": mediation.party_link_token(party),
        "flag": flag,
        "trend": trend,
        "sign_in_token": request_sign_in_link(customer=case.customer).token,
        "mailbox": mailbox,
        "inbound": inbound.email,
        "bot": bot,
        "policy_version": policy_version,
        "endpoint": endpoint,
        "delivery": send_ping(endpoint=endpoint, actor=admin),
    }
    # Lucy asked for a copy of her data (ready to download); a request by email awaits her.
    from concilia.privacy import actions as privacy
    from concilia.privacy import exports

    data_export = privacy.receive_request(
        kind="access", channel="tracking", customer=case.customer, verification="signed_in"
    )
    built = exports.build(data_export)
    privacy.record_export(
        request=data_export,
        name=data_export.export_file.storage.save("privacy/matrix.zip", io.BytesIO(built.content)),
        size=len(built.content),
        sha256="",
        files=built.files,
        days=7,
    )
    data_request = privacy.receive_request(
        kind="erasure", channel="email", email=case.customer.email, actor=world.users["dpo"]
    )
    world.objects |= {
        "data_export": data_export,
        "data_request": data_request,
        "data_confirm_token": privacy.confirm_token(data_request),
    }
    world.cookies = {
        "anonymous": SimpleCookie(),
        "customer": _signed_in_customer(case),
        "stranger": _signed_in_customer(other),
        "agent": _signed_in_staff(world.users["agent"]),
        "supervisor": _signed_in_staff(world.users["supervisor"]),
        "administrator": _signed_in_staff(admin, second_factor=True),
        "dpo": _signed_in_staff(world.users["dpo"]),
    }
    world.tokens = {
        role: ApiToken.issue(user=user, name=role, scopes=Scope.values)[1]
        for role, user in world.users.items()
    }
    return world


# --- asking ------------------------------------------------------------------------------------

SIGN_IN_PAGES = ("/helpdesk/login/", "/admin/login/", "/track")


def outcome_of(response) -> str:
    status = response.status_code
    if status in (301, 302, 303, 307, 308):
        location = response["Location"].split("?")[0]
        return "login" if location.endswith(SIGN_IN_PAGES) else "redirect"
    return "ok" if 200 <= status < 300 else str(status)


def ask(world: World, role: str, method: str, path: str, **extra: Any):
    """One request as `role`, rolled back afterwards (nothing it changes is seen by the next)."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.cookies = copy.deepcopy(world.cookies[role])
    cache.clear()  # rate limits and lock-outs count across requests
    with transaction.atomic():
        response = getattr(client, method.lower())(path, **extra)
        transaction.set_rollback(True)
    return response


# --- the routes and what each is asked with ----------------------------------------------------


@dataclass(frozen=True)
class Route:
    """How to call a route: its URL arguments, and the form a POST sends."""

    kwargs: Callable[[World], dict[str, Any]] = lambda w: {}
    data: Callable[[World], dict[str, Any]] = lambda w: {}
    query: str = ""


def _ref(w: World) -> dict[str, Any]:
    return {"reference": w.case.reference}


def _chat(w: World) -> dict[str, Any]:
    return {"public_id": w.conversation.public_id}


def _flag(w: World) -> dict[str, Any]:
    return {"pk": w.flag.pk}


def _feedback_question(w: World) -> dict[str, Any]:
    from concilia.feedback.actions import record_unanswered
    from concilia.feedback.models import UnansweredQuestion

    record_unanswered(conversation=w.conversation, text="Gift cards?", reason="no_answer")
    return {"pk": UnansweredQuestion.objects.get().pk}


def _feedback_label(w: World) -> dict[str, Any]:
    """A label of another conversation than Lucy's, which stays in the review queue."""
    from concilia.assistant.models import Conversation
    from concilia.feedback.models import ReviewItem, ReviewLabel

    label = ReviewLabel.objects.first()
    if label is None:
        other = Conversation.objects.create(token_digest="0" * 64, language="en")
        item = ReviewItem.objects.create(
            conversation=other, status="labelled", reviewer=w.users["supervisor"]
        )
        label = ReviewLabel.objects.create(
            review=item,
            text="Gift cards?",
            model="kinds",
            label="question",
            created_by=w.users["supervisor"],
        )
    return {"pk": label.pk}


def _version(w: World) -> dict[str, Any]:
    w.case.refresh_from_db(fields=["version"])
    return {"version": w.case.version}


# A route is keyed by its URL name (or its pattern when it has none); "name#variant" calls the
# same URL another way (another object, other data).
ROUTES: dict[str, Route] = {
    # The public site and the customers' tracking pages.
    "intake:home": Route(),
    "intake:complaint-new": Route(),
    "intake:complaint-new-es": Route(),
    "intake:complaint-submitted": Route(_ref),
    "intake:track": Route(),
    "intake:track-es": Route(),
    "intake:sign-in": Route(lambda w: {"token": w.sign_in_token}),
    "intake:sign-out": Route(),
    "intake:my-cases": Route(),
    "intake:case-detail": Route(_ref, lambda w: {"body": "Any news?"}),
    "intake:answer-offer": Route(_ref, lambda w: {"answer": "accept"}),
    "intake:answer-proposal": Route(_ref, lambda w: {"answer": "accept"}),
    "intake:answer-offer#garbage-id": Route(_ref, lambda w: {"offer": "x'1", "answer": "accept"}),
    "intake:answer-proposal#garbage-id": Route(_ref, lambda w: {"proposal": "1x", "answer": "ok"}),
    "intake:attachment": Route(
        lambda w: {"reference": w.case.reference, "attachment_id": w.attachment.pk}
    ),
    "intake:attachment#internal": Route(
        lambda w: {"reference": w.case.reference, "attachment_id": w.internal_attachment.pk}
    ),
    "set_language": Route(data=lambda w: {"language": "en", "next": "/"}),
    "assistant:chat": Route(),
    "assistant:chat-embed": Route(),
    "parties:page": Route(
        lambda w: {"token": w.party_token}, lambda w: {"form": "statement", "body": "Delivered."}
    ),
    # The helpdesk.
    "helpdesk:login": Route(),
    "helpdesk:logout": Route(),
    "helpdesk:queue": Route(),
    "helpdesk:bulk": Route(data=lambda w: {"action": "priority", "priority": "high"}),
    "helpdesk:load": Route(),
    "helpdesk:notifications": Route(),
    "helpdesk:case": Route(_ref),
    "helpdesk:case-action": Route(
        lambda w: {"reference": w.case.reference, "action": "note"},
        lambda w: {"body": "Called the courier.", **_version(w)},
    ),
    "case-dossier": Route(_ref),
    "livechat:list": Route(),
    "livechat:case": Route(_ref),
    "livechat:chat": Route(_chat),
    "livechat:messages": Route(_chat),
    "livechat:take": Route(_chat),
    "livechat:reply": Route(_chat, lambda w: {"body": "Hello, I am here."}),
    "livechat:end": Route(_chat),
    "decisions:override": Route(_ref),
    "mediation:page": Route(_ref),
    "analytics:dashboard": Route(),
    "analytics:mine": Route(),
    "analytics:people": Route(),
    "analytics:csv": Route(lambda w: {"chart": "volume"}),
    "analytics:summary": Route(data=lambda w: {"weekly": "off"}),
    "collective:list": Route(),
    "collective:detail": Route(_flag),
    "collective:act": Route(_flag),
    "collective:dismiss": Route(_flag, lambda w: {"dismiss-reason": "Different products."}),
    "trends:list": Route(),
    "trends:subscription": Route(data=lambda w: {"subscribe": "1"}),
    "trends:flag": Route(lambda w: {"pk": w.trend.pk}),
    "feedback:queue": Route(),
    "feedback:reviewed": Route(),
    "feedback:review": Route(
        _chat, lambda w: {"form-TOTAL_FORMS": "0", "form-INITIAL_FORMS": "0", "nothing": "1"}
    ),
    "feedback:exclude-label": Route(_feedback_label, lambda w: {"excluded": "1"}),
    "feedback:unanswered": Route(),
    "feedback:dismiss-question": Route(_feedback_question),
    "feedback:knowledge": Route(),
    "feedback:templates": Route(),
    "privacy:audit": Route(),
    "privacy:audit-export": Route(lambda w: {"format": "csv"}),
    "privacy:accountability": Route(),
    "privacy:document": Route(lambda w: {"kind": "record", "language": "en", "format": "md"}),
    "privacy:requests": Route(),
    "privacy:request-new": Route(
        data=lambda w: (
            {"kind": "access", "email": "lucy@example.com", "channel": "email"}
            | {"regime": "gdpr", "language": "en"}
        )
    ),
    "privacy:request": Route(lambda w: {"pk": w.data_request.pk}),
    "privacy:request-action": Route(
        lambda w: {"pk": w.data_request.pk, "action": "close"},
        lambda w: {"close-status": "refused", "close-outcome": "Not from Lucy."},
    ),
    "privacy:request-export": Route(lambda w: {"pk": w.data_export.pk}),
    "intake:my-data": Route(data=lambda w: {"request": "rectification", "details": "Grant-Smith"}),
    "intake:my-data-export": Route(lambda w: {"public_id": w.data_export.public_id}),
    "intake:my-data-confirm": Route(lambda w: {"token": w.data_confirm_token}),
    "accounts:two-factor": Route(),
    "accounts:two-factor-verify": Route(),
    "accounts:two-factor-setup": Route(),
    "accounts:two-factor-codes": Route(),
    "accounts:two-factor-off": Route(),
    "accounts:sign-out": Route(),
    # The admin's own pages (each model's pages are in ADMIN_MODELS).
    "admin:index": Route(),
    "admin:login": Route(),
    "admin:logout": Route(),
    "admin:password_change": Route(),
    "admin:password_change_done": Route(),
    "admin:autocomplete": Route(),
    "admin:jsi18n": Route(),
    "admin:view_on_site": Route(lambda w: {"content_type_id": 1, "object_id": 1}),
    "admin:app_list": Route(lambda w: {"app_label": "cases"}),
    "admin/(?P<url>.*)$": Route(query="admin/nothing-here/"),
    "admin:auth_user_password_change": Route(lambda w: {"id": w.users["agent"].pk}),
    "admin:resolution_policyversion_publish": Route(lambda w: {"object_id": w.policy_version.pk}),
    "admin:resolution_policyversion_simulate": Route(lambda w: {"object_id": w.policy_version.pk}),
    "admin:integrations_inboundemail_raw": Route(lambda w: {"pk": w.inbound.pk}),
    # The API's own pages (each operation is in API_MATRIX).
    "api-v1:openapi-json": Route(),
    "api-v1:openapi-view": Route(),
    "api-v1:api-root": Route(),
    # Webhooks: a secret authenticates them, never a session.
    "mail:inbound": Route(lambda w: {"slug": w.mailbox.slug}),
    "telegram:webhook": Route(lambda w: {"code": w.bot.code}),
    "favicon.ico": Route(query="favicon.ico"),
    # Prometheus: no role reads it; the test client asks from loopback, which may when no
    # CONCILIA_METRICS_TOKEN is set (tokens and other addresses: core/tests/test_operations.py).
    "metrics": Route(),
}


def _rows(rows: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """(outcomes, route or model or method, method or page or path) rows, outcomes first so
    that the columns line up, as a dict by the last two."""
    table = {(first, second): outcomes for outcomes, first, second in rows}
    assert len(table) == len(rows), "a row is written twice"
    return table


# What each role gets, per route and method.
# fmt: off
MATRIX: dict[tuple[str, str], str] = _rows(
    [
        # anonymous  customer  stranger  agent     supervisor  administrator  dpo
        ("ok         ok        ok        ok        ok          ok             ok", "intake:home", "GET"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:home", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:complaint-new", "GET"),
        ("400        400       400       400       400         400            400", "intake:complaint-new", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:complaint-new-es", "GET"),
        ("400        400       400       400       400         400            400", "intake:complaint-new-es", "POST"),
        ("404        ok        404       404       404         404            404", "intake:complaint-submitted", "GET"),
        ("404        ok        404       404       404         404            404", "intake:complaint-submitted", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:track", "GET"),
        ("400        400       400       400       400         400            400", "intake:track", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:track-es", "GET"),
        ("400        400       400       400       400         400            400", "intake:track-es", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:sign-in", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "intake:sign-in", "POST"),
        ("405        405       405       405       405         405            405", "intake:sign-out", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "intake:sign-out", "POST"),
        ("login      ok        ok        login     login       login          login", "intake:my-cases", "GET"),
        ("login      ok        ok        login     login       login          login", "intake:my-cases", "POST"),
        ("login      ok        404       login     login       login          login", "intake:case-detail", "GET"),
        ("login      redirect  404       login     login       login          login", "intake:case-detail", "POST"),
        ("405        405       405       405       405         405            405", "intake:answer-offer", "GET"),
        ("login      404       404       login     login       login          login", "intake:answer-offer", "POST"),
        ("405        405       405       405       405         405            405", "intake:answer-proposal", "GET"),
        ("login      404       404       login     login       login          login", "intake:answer-proposal", "POST"),
        ("405        405       405       405       405         405            405", "intake:answer-offer#garbage-id", "GET"),
        ("login      404       404       login     login       login          login", "intake:answer-offer#garbage-id", "POST"),
        ("405        405       405       405       405         405            405", "intake:answer-proposal#garbage-id", "GET"),
        ("login      404       404       login     login       login          login", "intake:answer-proposal#garbage-id", "POST"),
        ("404        ok        404       ok        ok          ok             404", "intake:attachment", "GET"),
        ("404        ok        404       ok        ok          ok             404", "intake:attachment", "POST"),
        ("404        404       404       ok        ok          ok             404", "intake:attachment#internal", "GET"),
        ("404        404       404       ok        ok          ok             404", "intake:attachment#internal", "POST"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "set_language", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "set_language", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "assistant:chat", "GET"),
        ("405        405       405       405       405         405            405", "assistant:chat", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "assistant:chat-embed", "GET"),
        ("405        405       405       405       405         405            405", "assistant:chat-embed", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "parties:page", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "parties:page", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "helpdesk:login", "GET"),
        ("ok         ok        ok        ok        ok          ok             ok", "helpdesk:login", "POST"),
        ("405        405       405       405       405         405            405", "helpdesk:logout", "GET"),
        ("login      login     login     login     login       login          login", "helpdesk:logout", "POST"),
        ("login      login     login     ok        ok          ok             403", "helpdesk:queue", "GET"),
        ("405        405       405       405       405         405            405", "helpdesk:queue", "POST"),
        ("405        405       405       405       405         405            405", "helpdesk:bulk", "GET"),
        ("login      login     login     redirect  redirect    redirect       403", "helpdesk:bulk", "POST"),
        ("login      login     login     403       ok          ok             403", "helpdesk:load", "GET"),
        ("405        405       405       405       405         405            405", "helpdesk:load", "POST"),
        ("login      login     login     ok        ok          ok             403", "helpdesk:notifications", "GET"),
        ("login      login     login     redirect  redirect    redirect       403", "helpdesk:notifications", "POST"),
        ("login      login     login     ok        ok          ok             403", "helpdesk:case", "GET"),
        ("405        405       405       405       405         405            405", "helpdesk:case", "POST"),
        ("405        405       405       405       405         405            405", "helpdesk:case-action", "GET"),
        ("login      login     login     redirect  redirect    redirect       403", "helpdesk:case-action", "POST"),
        ("login      login     login     ok        ok          ok             403", "case-dossier", "GET"),
        ("405        405       405       405       405         405            405", "case-dossier", "POST"),
        ("login      login     login     ok        ok          ok             403", "livechat:list", "GET"),
        ("405        405       405       405       405         405            405", "livechat:list", "POST"),
        ("login      login     login     redirect  redirect    redirect       403", "livechat:case", "GET"),
        ("405        405       405       405       405         405            405", "livechat:case", "POST"),
        ("login      login     login     ok        ok          ok             403", "livechat:chat", "GET"),
        ("405        405       405       405       405         405            405", "livechat:chat", "POST"),
        ("login      login     login     ok        ok          ok             403", "livechat:messages", "GET"),
        ("405        405       405       405       405         405            405", "livechat:messages", "POST"),
        ("405        405       405       405       405         405            405", "livechat:take", "GET"),
        ("login      login     login     redirect  redirect    redirect       403", "livechat:take", "POST"),
        ("405        405       405       405       405         405            405", "livechat:reply", "GET"),
        ("login      login     login     redirect  redirect    redirect       403", "livechat:reply", "POST"),
        ("405        405       405       405       405         405            405", "livechat:end", "GET"),
        ("login      login     login     redirect  redirect    redirect       403", "livechat:end", "POST"),
        ("405        405       405       405       405         405            405", "decisions:override", "GET"),
        ("login      login     login     400       400         400            403", "decisions:override", "POST"),
        ("login      login     login     403       ok          ok             403", "mediation:page", "GET"),
        ("login      login     login     403       400         400            403", "mediation:page", "POST"),
        ("login      login     login     403       ok          ok             403", "analytics:dashboard", "GET"),
        ("405        405       405       405       405         405            405", "analytics:dashboard", "POST"),
        ("login      login     login     ok        ok          ok             403", "analytics:mine", "GET"),
        ("405        405       405       405       405         405            405", "analytics:mine", "POST"),
        ("login      login     login     403       ok          ok             403", "analytics:people", "GET"),
        ("405        405       405       405       405         405            405", "analytics:people", "POST"),
        ("login      login     login     ok        ok          ok             403", "analytics:csv", "GET"),
        ("405        405       405       405       405         405            405", "analytics:csv", "POST"),
        ("405        405       405       405       405         405            405", "analytics:summary", "GET"),
        ("login      login     login     403       redirect    redirect       403", "analytics:summary", "POST"),
        ("login      login     login     403       ok          ok             403", "collective:list", "GET"),
        ("405        405       405       405       405         405            405", "collective:list", "POST"),
        ("login      login     login     403       ok          ok             403", "collective:detail", "GET"),
        ("405        405       405       405       405         405            405", "collective:detail", "POST"),
        ("405        405       405       405       405         405            405", "collective:act", "GET"),
        ("login      login     login     403       400         400            403", "collective:act", "POST"),
        ("405        405       405       405       405         405            405", "collective:dismiss", "GET"),
        ("login      login     login     403       redirect    redirect       403", "collective:dismiss", "POST"),
        ("login      login     login     403       ok          ok             403", "trends:list", "GET"),
        ("405        405       405       405       405         405            405", "trends:list", "POST"),
        ("405        405       405       405       405         405            405", "trends:subscription", "GET"),
        ("login      login     login     403       redirect    redirect       403", "trends:subscription", "POST"),
        ("405        405       405       405       405         405            405", "trends:flag", "GET"),
        ("login      login     login     403       redirect    redirect       403", "trends:flag", "POST"),
        ("login      login     login     403       ok          ok             403", "feedback:queue", "GET"),
        ("405        405       405       405       405         405            405", "feedback:queue", "POST"),
        ("login      login     login     403       ok          ok             403", "feedback:reviewed", "GET"),
        ("405        405       405       405       405         405            405", "feedback:reviewed", "POST"),
        ("login      login     login     403       ok          ok             403", "feedback:review", "GET"),
        ("login      login     login     403       redirect    redirect       403", "feedback:review", "POST"),
        ("405        405       405       405       405         405            405", "feedback:exclude-label", "GET"),
        ("login      login     login     403       redirect    redirect       403", "feedback:exclude-label", "POST"),
        ("login      login     login     403       ok          ok             403", "feedback:unanswered", "GET"),
        ("405        405       405       405       405         405            405", "feedback:unanswered", "POST"),
        ("405        405       405       405       405         405            405", "feedback:dismiss-question", "GET"),
        ("login      login     login     403       redirect    redirect       403", "feedback:dismiss-question", "POST"),
        ("login      login     login     403       ok          ok             403", "feedback:knowledge", "GET"),
        ("405        405       405       405       405         405            405", "feedback:knowledge", "POST"),
        ("login      login     login     403       ok          ok             403", "feedback:templates", "GET"),
        ("405        405       405       405       405         405            405", "feedback:templates", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:audit", "GET"),
        ("405        405       405       405       405         405            405", "privacy:audit", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:audit-export", "GET"),
        ("405        405       405       405       405         405            405", "privacy:audit-export", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:accountability", "GET"),
        ("405        405       405       405       405         405            405", "privacy:accountability", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:document", "GET"),
        ("405        405       405       405       405         405            405", "privacy:document", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:requests", "GET"),
        ("405        405       405       405       405         405            405", "privacy:requests", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:request-new", "GET"),
        ("login      login     login     403       403         redirect       redirect", "privacy:request-new", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:request", "GET"),
        ("405        405       405       405       405         405            405", "privacy:request", "POST"),
        ("405        405       405       405       405         405            405", "privacy:request-action", "GET"),
        ("login      login     login     403       403         redirect       redirect", "privacy:request-action", "POST"),
        ("login      login     login     403       403         ok             ok", "privacy:request-export", "GET"),
        ("405        405       405       405       405         405            405", "privacy:request-export", "POST"),
        ("login      ok        ok        login     login       login          login", "intake:my-data", "GET"),
        ("login      redirect  redirect  login     login       login          login", "intake:my-data", "POST"),
        ("404        ok        404       404       404         404            404", "intake:my-data-export", "GET"),
        ("405        405       405       405       405         405            405", "intake:my-data-export", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:my-data-confirm", "GET"),
        ("ok         ok        ok        ok        ok          ok             ok", "intake:my-data-confirm", "POST"),
        ("login      login     login     ok        ok          ok             ok", "accounts:two-factor", "GET"),
        ("login      login     login     ok        ok          ok             ok", "accounts:two-factor", "POST"),
        ("login      login     login     redirect  redirect    redirect       redirect", "accounts:two-factor-verify", "GET"),
        ("login      login     login     redirect  redirect    redirect       redirect", "accounts:two-factor-verify", "POST"),
        ("login      login     login     ok        ok          ok             ok", "accounts:two-factor-setup", "GET"),
        ("login      login     login     ok        ok          ok             ok", "accounts:two-factor-setup", "POST"),
        ("405        405       405       405       405         405            405", "accounts:two-factor-codes", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "accounts:two-factor-codes", "POST"),
        ("405        405       405       405       405         405            405", "accounts:two-factor-off", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "accounts:two-factor-off", "POST"),
        ("405        405       405       405       405         405            405", "accounts:sign-out", "GET"),
        ("login      login     login     login     login       login          login", "accounts:sign-out", "POST"),
        ("login      login     login     ok        ok          ok             ok", "admin:index", "GET"),
        ("login      login     login     ok        ok          ok             ok", "admin:index", "POST"),
        ("ok         ok        ok        redirect  redirect    redirect       redirect", "admin:login", "GET"),
        ("ok         ok        ok        ok        ok          ok             ok", "admin:login", "POST"),
        ("redirect   redirect  redirect  405       405         405            405", "admin:logout", "GET"),
        ("redirect   redirect  redirect  ok        ok          ok             ok", "admin:logout", "POST"),
        ("login      login     login     ok        ok          ok             ok", "admin:password_change", "GET"),
        ("login      login     login     ok        ok          ok             ok", "admin:password_change", "POST"),
        ("login      login     login     ok        ok          ok             ok", "admin:password_change_done", "GET"),
        ("login      login     login     405       405         405            405", "admin:password_change_done", "POST"),
        ("login      login     login     403       403         403            403", "admin:autocomplete", "GET"),
        ("login      login     login     405       405         405            405", "admin:autocomplete", "POST"),
        ("login      login     login     ok        ok          ok             ok", "admin:jsi18n", "GET"),
        ("login      login     login     405       405         405            405", "admin:jsi18n", "POST"),
        ("login      login     login     404       404         404            404", "admin:view_on_site", "GET"),
        ("login      login     login     404       404         404            404", "admin:view_on_site", "POST"),
        ("login      login     login     ok        ok          ok             404", "admin:app_list", "GET"),
        ("login      login     login     ok        ok          ok             404", "admin:app_list", "POST"),
        ("login      login     login     404       404         404            404", "admin/(?P<url>.*)$", "GET"),
        ("login      login     login     404       404         404            404", "admin/(?P<url>.*)$", "POST"),
        ("login      login     login     403       403         ok             403", "admin:auth_user_password_change", "GET"),
        ("login      login     login     403       403         ok             403", "admin:auth_user_password_change", "POST"),
        ("login      login     login     403       403         405            403", "admin:resolution_policyversion_publish", "GET"),
        ("login      login     login     403       403         redirect       403", "admin:resolution_policyversion_publish", "POST"),
        ("login      login     login     403       403         ok             403", "admin:resolution_policyversion_simulate", "GET"),
        ("login      login     login     403       403         ok             403", "admin:resolution_policyversion_simulate", "POST"),
        ("login      login     login     404       404         ok             404", "admin:integrations_inboundemail_raw", "GET"),
        ("login      login     login     404       404         ok             404", "admin:integrations_inboundemail_raw", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "api-v1:openapi-json", "GET"),
        ("ok         ok        ok        ok        ok          ok             ok", "api-v1:openapi-json", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "api-v1:openapi-view", "GET"),
        ("ok         ok        ok        ok        ok          ok             ok", "api-v1:openapi-view", "POST"),
        ("404        404       404       404       404         404            404", "api-v1:api-root", "GET"),
        ("404        404       404       404       404         404            404", "api-v1:api-root", "POST"),
        ("405        405       405       405       405         405            405", "mail:inbound", "GET"),
        ("401        401       401       401       401         401            401", "mail:inbound", "POST"),
        ("405        405       405       405       405         405            405", "telegram:webhook", "GET"),
        ("403        403       403       403       403         403            403", "telegram:webhook", "POST"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "favicon.ico", "GET"),
        ("redirect   redirect  redirect  redirect  redirect    redirect       redirect", "favicon.ico", "POST"),
        ("ok         ok        ok        ok        ok          ok             ok", "metrics", "GET"),
        ("405        405       405       405       405         405            405", "metrics", "POST"),
    ]
)
# fmt: on

ADMIN_PAGES = ("changelist", "add", "change", "history", "delete")

# Each model's admin pages (changelist, add, change, history, delete of its first object; a
# model without objects in this world is asked for a missing one: the admin redirects).
# fmt: off
ADMIN_MATRIX: dict[tuple[str, str], str] = _rows(
    [
        # anonymous  customer  stranger  agent     supervisor  administrator  dpo
        ("login      login     login     403       403         ok             403", "accounts.apitoken", "changelist"),
        ("login      login     login     403       403         ok             403", "accounts.apitoken", "add"),
        ("login      login     login     403       403         ok             403", "accounts.apitoken", "change"),
        ("login      login     login     403       403         ok             403", "accounts.apitoken", "history"),
        ("login      login     login     403       403         ok             403", "accounts.apitoken", "delete"),
        ("login      login     login     403       403         ok             403", "accounts.team", "changelist"),
        ("login      login     login     403       403         ok             403", "accounts.team", "add"),
        ("login      login     login     403       403         ok             403", "accounts.team", "change"),
        ("login      login     login     403       403         ok             403", "accounts.team", "history"),
        ("login      login     login     403       403         ok             403", "accounts.team", "delete"),
        ("login      login     login     403       403         ok             403", "accounts.user", "changelist"),
        ("login      login     login     403       403         ok             403", "accounts.user", "add"),
        ("login      login     login     403       403         ok             403", "accounts.user", "change"),
        ("login      login     login     403       403         ok             403", "accounts.user", "history"),
        ("login      login     login     403       403         ok             403", "accounts.user", "delete"),
        ("login      login     login     403       403         ok             403", "assistant.conversation", "changelist"),
        ("login      login     login     403       403         403            403", "assistant.conversation", "add"),
        ("login      login     login     403       403         ok             403", "assistant.conversation", "change"),
        ("login      login     login     403       403         ok             403", "assistant.conversation", "history"),
        ("login      login     login     403       403         403            403", "assistant.conversation", "delete"),
        ("login      login     login     403       403         ok             403", "assistant.handover", "changelist"),
        ("login      login     login     403       403         403            403", "assistant.handover", "add"),
        ("login      login     login     403       403         ok             403", "assistant.handover", "change"),
        ("login      login     login     403       403         ok             403", "assistant.handover", "history"),
        ("login      login     login     403       403         ok             403", "assistant.handover", "delete"),
        ("login      login     login     403       403         ok             403", "assistant.handoverrules", "changelist"),
        ("login      login     login     403       403         403            403", "assistant.handoverrules", "add"),
        ("login      login     login     403       403         ok             403", "assistant.handoverrules", "change"),
        ("login      login     login     403       403         ok             403", "assistant.handoverrules", "history"),
        ("login      login     login     403       403         ok             403", "assistant.handoverrules", "delete"),
        ("login      login     login     403       403         ok             403", "assistant.knowledgearticle", "changelist"),
        ("login      login     login     403       403         ok             403", "assistant.knowledgearticle", "add"),
        ("login      login     login     403       403         redirect       403", "assistant.knowledgearticle", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "assistant.knowledgearticle", "history"),
        ("login      login     login     403       403         redirect       403", "assistant.knowledgearticle", "delete"),
        ("login      login     login     403       403         ok             403", "assistant.technicianvisit", "changelist"),
        ("login      login     login     403       403         ok             403", "assistant.technicianvisit", "add"),
        ("login      login     login     403       403         redirect       403", "assistant.technicianvisit", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "assistant.technicianvisit", "history"),
        ("login      login     login     403       403         redirect       403", "assistant.technicianvisit", "delete"),
        ("login      login     login     403       403         ok             403", "assistant.troubleshootingguide", "changelist"),
        ("login      login     login     403       403         ok             403", "assistant.troubleshootingguide", "add"),
        ("login      login     login     403       403         redirect       403", "assistant.troubleshootingguide", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "assistant.troubleshootingguide", "history"),
        ("login      login     login     403       403         redirect       403", "assistant.troubleshootingguide", "delete"),
        ("login      login     login     403       403         ok             403", "auth.group", "changelist"),
        ("login      login     login     403       403         ok             403", "auth.group", "add"),
        ("login      login     login     403       403         ok             403", "auth.group", "change"),
        ("login      login     login     403       403         ok             403", "auth.group", "history"),
        ("login      login     login     403       403         ok             403", "auth.group", "delete"),
        ("login      login     login     403       403         ok             403", "cases.assignmentrule", "changelist"),
        ("login      login     login     403       403         ok             403", "cases.assignmentrule", "add"),
        ("login      login     login     403       403         redirect       403", "cases.assignmentrule", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "cases.assignmentrule", "history"),
        ("login      login     login     403       403         redirect       403", "cases.assignmentrule", "delete"),
        ("login      login     login     ok        ok          ok             403", "cases.case", "changelist"),
        ("login      login     login     403       403         403            403", "cases.case", "add"),
        ("login      login     login     ok        ok          ok             403", "cases.case", "change"),
        ("login      login     login     ok        ok          ok             403", "cases.case", "history"),
        ("login      login     login     403       403         403            403", "cases.case", "delete"),
        ("login      login     login     403       403         ok             403", "cases.category", "changelist"),
        ("login      login     login     403       403         ok             403", "cases.category", "add"),
        ("login      login     login     403       403         ok             403", "cases.category", "change"),
        ("login      login     login     403       403         ok             403", "cases.category", "history"),
        ("login      login     login     403       403         ok             403", "cases.category", "delete"),
        ("login      login     login     403       403         ok             403", "cases.jurisdiction", "changelist"),
        ("login      login     login     403       403         ok             403", "cases.jurisdiction", "add"),
        ("login      login     login     403       403         ok             403", "cases.jurisdiction", "change"),
        ("login      login     login     403       403         ok             403", "cases.jurisdiction", "history"),
        ("login      login     login     403       403         ok             403", "cases.jurisdiction", "delete"),
        ("login      login     login     403       403         ok             403", "cases.replytemplate", "changelist"),
        ("login      login     login     403       403         ok             403", "cases.replytemplate", "add"),
        ("login      login     login     403       403         redirect       403", "cases.replytemplate", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "cases.replytemplate", "history"),
        ("login      login     login     403       403         redirect       403", "cases.replytemplate", "delete"),
        ("login      login     login     403       403         ok             403", "core.businesscalendar", "changelist"),
        ("login      login     login     403       403         ok             403", "core.businesscalendar", "add"),
        ("login      login     login     403       403         redirect       403", "core.businesscalendar", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "core.businesscalendar", "history"),
        ("login      login     login     403       403         redirect       403", "core.businesscalendar", "delete"),
        ("login      login     login     403       403         ok             403", "core.deadjob", "changelist"),
        ("login      login     login     403       403         403            403", "core.deadjob", "add"),
        ("login      login     login     403       403         redirect       403", "core.deadjob", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "core.deadjob", "history"),
        ("login      login     login     403       403         redirect       403", "core.deadjob", "delete"),
        ("login      login     login     403       403         ok             403", "core.holiday", "changelist"),
        ("login      login     login     403       403         ok             403", "core.holiday", "add"),
        ("login      login     login     403       403         redirect       403", "core.holiday", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "core.holiday", "history"),
        ("login      login     login     403       403         redirect       403", "core.holiday", "delete"),
        ("login      login     login     403       403         ok             403", "core.periodicrun", "changelist"),
        ("login      login     login     403       403         403            403", "core.periodicrun", "add"),
        ("login      login     login     403       403         redirect       403", "core.periodicrun", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "core.periodicrun", "history"),
        ("login      login     login     403       403         redirect       403", "core.periodicrun", "delete"),
        ("login      login     login     403       403         ok             403", "customers.consent", "changelist"),
        ("login      login     login     403       403         403            403", "customers.consent", "add"),
        ("login      login     login     403       403         ok             403", "customers.consent", "change"),
        ("login      login     login     403       403         ok             403", "customers.consent", "history"),
        ("login      login     login     403       403         403            403", "customers.consent", "delete"),
        ("login      login     login     403       403         ok             403", "customers.customer", "changelist"),
        ("login      login     login     403       403         ok             403", "customers.customer", "add"),
        ("login      login     login     403       403         ok             403", "customers.customer", "change"),
        ("login      login     login     403       403         ok             403", "customers.customer", "history"),
        ("login      login     login     403       403         ok             403", "customers.customer", "delete"),
        ("login      login     login     403       403         ok             403", "customers.privacynotice", "changelist"),
        ("login      login     login     403       403         ok             403", "customers.privacynotice", "add"),
        ("login      login     login     403       403         ok             403", "customers.privacynotice", "change"),
        ("login      login     login     403       403         ok             403", "customers.privacynotice", "history"),
        # a published notice is never deleted (consents name it); a change is a new version
        ("login      login     login     403       403         403            403", "customers.privacynotice", "delete"),
        ("login      login     login     403       403         ok             403", "django_tasks_database.dbtaskresult", "changelist"),
        ("login      login     login     403       403         403            403", "django_tasks_database.dbtaskresult", "add"),
        ("login      login     login     403       403         ok             403", "django_tasks_database.dbtaskresult", "change"),
        ("login      login     login     403       403         ok             403", "django_tasks_database.dbtaskresult", "history"),
        ("login      login     login     403       403         403            403", "django_tasks_database.dbtaskresult", "delete"),
        ("login      login     login     403       403         ok             403", "integrations.delivery", "changelist"),
        ("login      login     login     403       403         403            403", "integrations.delivery", "add"),
        ("login      login     login     403       403         ok             403", "integrations.delivery", "change"),
        ("login      login     login     403       403         ok             403", "integrations.delivery", "history"),
        ("login      login     login     403       403         ok             403", "integrations.delivery", "delete"),
        ("login      login     login     403       403         ok             403", "integrations.endpoint", "changelist"),
        ("login      login     login     403       403         ok             403", "integrations.endpoint", "add"),
        ("login      login     login     403       403         ok             403", "integrations.endpoint", "change"),
        ("login      login     login     403       403         ok             403", "integrations.endpoint", "history"),
        ("login      login     login     403       403         ok             403", "integrations.endpoint", "delete"),
        ("login      login     login     403       403         ok             403", "integrations.inboundemail", "changelist"),
        ("login      login     login     403       403         403            403", "integrations.inboundemail", "add"),
        ("login      login     login     403       403         ok             403", "integrations.inboundemail", "change"),
        ("login      login     login     403       403         ok             403", "integrations.inboundemail", "history"),
        ("login      login     login     403       403         403            403", "integrations.inboundemail", "delete"),
        ("login      login     login     403       403         ok             403", "integrations.mailbox", "changelist"),
        ("login      login     login     403       403         ok             403", "integrations.mailbox", "add"),
        ("login      login     login     403       403         ok             403", "integrations.mailbox", "change"),
        ("login      login     login     403       403         ok             403", "integrations.mailbox", "history"),
        ("login      login     login     403       403         ok             403", "integrations.mailbox", "delete"),
        ("login      login     login     403       403         ok             403", "integrations.telegrambot", "changelist"),
        ("login      login     login     403       403         ok             403", "integrations.telegrambot", "add"),
        ("login      login     login     403       403         ok             403", "integrations.telegrambot", "change"),
        ("login      login     login     403       403         ok             403", "integrations.telegrambot", "history"),
        ("login      login     login     403       403         ok             403", "integrations.telegrambot", "delete"),
        ("login      login     login     403       403         ok             403", "integrations.telegramchat", "changelist"),
        ("login      login     login     403       403         403            403", "integrations.telegramchat", "add"),
        ("login      login     login     403       403         redirect       403", "integrations.telegramchat", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "integrations.telegramchat", "history"),
        ("login      login     login     403       403         redirect       403", "integrations.telegramchat", "delete"),
        ("login      login     login     403       403         ok             ok", "privacy.controller", "changelist"),
        ("login      login     login     403       403         ok             403", "privacy.controller", "add"),
        ("login      login     login     403       403         redirect       redirect", "privacy.controller", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "privacy.controller", "history"),
        ("login      login     login     403       403         403            403", "privacy.controller", "delete"),
        ("login      login     login     403       403         ok             403", "privacy.retentionrules", "changelist"),
        ("login      login     login     403       403         ok             403", "privacy.retentionrules", "add"),
        ("login      login     login     403       403         redirect       403", "privacy.retentionrules", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "privacy.retentionrules", "history"),
        ("login      login     login     403       403         403            403", "privacy.retentionrules", "delete"),
        ("login      login     login     403       403         ok             ok", "privacy.retentionrun", "changelist"),
        ("login      login     login     403       403         403            403", "privacy.retentionrun", "add"),
        ("login      login     login     403       403         redirect       redirect", "privacy.retentionrun", "change"),
        ("login      login     login     redirect  redirect    redirect       redirect", "privacy.retentionrun", "history"),
        ("login      login     login     403       403         403            403", "privacy.retentionrun", "delete"),
        ("login      login     login     403       403         ok             403", "resolution.collectiverule", "changelist"),
        ("login      login     login     403       403         ok             403", "resolution.collectiverule", "add"),
        ("login      login     login     403       403         ok             403", "resolution.collectiverule", "change"),
        ("login      login     login     403       403         ok             403", "resolution.collectiverule", "history"),
        ("login      login     login     403       403         ok             403", "resolution.collectiverule", "delete"),
        ("login      login     login     403       403         ok             403", "resolution.policy", "changelist"),
        ("login      login     login     403       403         403            403", "resolution.policy", "add"),
        ("login      login     login     403       403         ok             403", "resolution.policy", "change"),
        ("login      login     login     403       403         ok             403", "resolution.policy", "history"),
        ("login      login     login     403       403         403            403", "resolution.policy", "delete"),
        ("login      login     login     403       403         ok             403", "resolution.policyversion", "changelist"),
        ("login      login     login     403       403         ok             403", "resolution.policyversion", "add"),
        ("login      login     login     403       403         ok             403", "resolution.policyversion", "change"),
        ("login      login     login     403       403         ok             403", "resolution.policyversion", "history"),
        ("login      login     login     403       403         403            403", "resolution.policyversion", "delete"),
    ]
)
# fmt: on

# Each API operation, called with the role's token (with every scope) and an empty JSON body;
# customers have no tokens: the API never reads a browser's session.
# fmt: off
API_MATRIX: dict[tuple[str, str], str] = _rows(
    [
        # anonymous  customer  stranger  agent     supervisor  administrator  dpo
        ("ok         ok        ok        ok        ok          ok             ok", "POST", "/api/v1/complaints"),
        ("401        401       401       ok        ok          ok             403", "GET", "/api/v1/complaints/{reference}"),
        ("ok         ok        ok        ok        ok          ok             ok", "GET", "/api/v1/categories"),
        ("ok         ok        ok        ok        ok          ok             ok", "GET", "/api/v1/privacy-notice"),
        ("401        401       401       ok        ok          ok             403", "GET", "/api/v1/cases"),
        ("401        401       401       ok        ok          ok             403", "GET", "/api/v1/cases/{reference}"),
        ("401        401       401       ok        ok          ok             403", "POST", "/api/v1/cases/{reference}/replies"),
        ("401        401       401       ok        ok          ok             403", "POST", "/api/v1/cases/{reference}/notes"),
        ("401        401       401       ok        ok          ok             403", "POST", "/api/v1/cases/{reference}/status"),
        ("401        401       401       ok        ok          ok             403", "POST", "/api/v1/cases/{reference}/assign"),
        ("401        401       401       ok        ok          ok             403", "POST", "/api/v1/cases/{reference}/transfer"),
        ("ok         ok        ok        ok        ok          ok             ok", "POST", "/api/v1/conversations"),
        ("404        404       404       404       404         404            404", "GET", "/api/v1/conversations/{conversation_id}"),
        ("404        404       404       404       404         404            404", "POST", "/api/v1/conversations/{conversation_id}/messages"),
        ("422        422       422       422       422         422            422", "POST", "/api/v1/conversations/{conversation_id}/attachments"),
        ("404        404       404       404       404         404            404", "POST", "/api/v1/conversations/{conversation_id}/messages/{seq}/rating"),
        ("404        404       404       404       404         404            404", "POST", "/api/v1/conversations/{conversation_id}/survey"),
        ("401        401       401       403       403         ok             403", "GET", "/api/v1/webhooks/event-types"),
        ("401        401       401       403       403         ok             403", "GET", "/api/v1/webhooks/endpoints"),
        ("401        401       401       403       403         ok             403", "POST", "/api/v1/webhooks/endpoints"),
        ("401        401       401       403       403         ok             403", "GET", "/api/v1/webhooks/endpoints/{endpoint_id}"),
        ("401        401       401       403       403         ok             403", "PATCH", "/api/v1/webhooks/endpoints/{endpoint_id}"),
        ("401        401       401       403       403         ok             403", "DELETE", "/api/v1/webhooks/endpoints/{endpoint_id}"),
        ("401        401       401       403       403         ok             403", "POST", "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"),
        ("401        401       401       403       403         ok             403", "POST", "/api/v1/webhooks/endpoints/{endpoint_id}/ping"),
        ("401        401       401       403       403         ok             403", "GET", "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries"),
        ("401        401       401       403       403         ok             403", "POST", "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver"),
    ]
)
# fmt: on


def walk(
    resolver: URLResolver | None = None, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(key, route) of every URL pattern: its namespaced name, or its pattern when unnamed."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            yield (f"{namespace}{pattern.name}" if pattern.name else route), route


def _matrix_routes() -> dict[str, str]:
    """The routes this matrix covers: all but API operations and each admin model's pages."""
    from django.contrib import admin

    from concilia.api import api

    model_pages = {
        f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}"
        for model in admin.site._registry
        for page in ADMIN_PAGES
    }
    operations = {
        f"api-v1:{operation.operation_id or operation.view_func.__name__}"
        for router in api._routers
        for path_view in router[1].path_operations.values()
        for operation in path_view.operations
    }
    routes = {}
    for key, route in walk():
        if key in operations or key in model_pages:
            continue
        if key == route and re.match(r"^admin/\w+/\w+/<path:object_id>/$", route):
            continue  # a model's old-style change URL, redirecting to its change page
        routes[key] = route
    return routes


def url_of(world: World, key: str) -> str:
    route = ROUTES[key]
    name = key.split("#")[0]
    if route.query:
        return "/" + route.query
    return reverse(name, kwargs=route.kwargs(world))


CRASHES: list[str] = []


def observe(world: World, key: str, method: str) -> str:
    route = ROUTES[key]
    path = url_of(world, key)
    outcomes = []
    for role in ROLES:
        extra = {"data": route.data(world)} if method == "POST" else {}
        try:
            response = ask(world, role, method, path, **extra)
        except Exception as error:  # the test client raises what the view raised: a 500
            CRASHES.append(f"{method} {path} as {role}: {error!r}")
            outcomes.append("500")
            continue
        outcomes.append(outcome_of(response))
    return " ".join(outcomes)


@pytest.fixture(autouse=True)
def quiet_refusals():
    """Every refusal is logged by django.request with its traceback: hundreds here, on purpose."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def _check(rows: dict[tuple[str, str], str], observed: dict[tuple[str, str], str]) -> None:
    if PRINT:
        for (key, method), got in observed.items():
            print(f'    ("{key}", "{method}"): "{got}",')
    assert not CRASHES, "Server errors:\n" + "\n".join(CRASHES)
    problems = [
        f"{key} {method}: expected {rows.get((key, method))!r}, got {got!r}"
        for (key, method), got in observed.items()
        if got.split() != rows.get((key, method), "").split()
    ]
    assert not problems, "\n".join(problems)


def test_every_page_and_form(world):
    observed = {
        (key, method): observe(world, key, method) for key in ROUTES for method in ("GET", "POST")
    }
    _check(MATRIX, observed)


def test_every_route_is_in_the_matrix():
    missing = sorted(set(_matrix_routes()) - {key.split("#")[0] for key in ROUTES})
    assert not missing, "Unlisted view: add it to the matrix (ROUTES and MATRIX): " + ", ".join(
        missing
    )
    stale = sorted({key.split("#")[0] for key in ROUTES} - set(_matrix_routes()))
    assert not stale, "These rows name no route any more: " + ", ".join(stale)
    assert {key for key, _method in MATRIX} == set(ROUTES)


# --- the admin: each model's pages ---------------------------------------------------------------


def _admin_urls(world: World) -> Iterator[tuple[str, str, str]]:
    from django.contrib import admin

    for model in sorted(admin.site._registry, key=lambda m: m._meta.label_lower):
        opts = model._meta
        instance = model._default_manager.order_by("pk").first()
        for page in ADMIN_PAGES:
            name = f"admin:{opts.app_label}_{opts.model_name}_{page}"
            args = () if page in ("changelist", "add") else (instance.pk if instance else 0,)
            yield opts.label_lower, page, reverse(name, args=args)


def test_every_admin_page(world):
    observed: dict[tuple[str, str], str] = {}
    for label, page, path in _admin_urls(world):
        outcomes = []
        for role in ROLES:
            try:
                outcomes.append(outcome_of(ask(world, role, "GET", path)))
            except Exception as error:
                CRASHES.append(f"GET {path} as {role}: {error!r}")
                outcomes.append("500")
        observed[(label, page)] = " ".join(outcomes)
    _check(ADMIN_MATRIX, observed)


# --- the API: each operation of the OpenAPI schema -------------------------------------------------


def _operations() -> Iterator[tuple[str, str, Any]]:
    """(METHOD, path template, the TokenAuth that guards it or None) of every API operation."""
    from ninja.constants import NOT_SET

    from concilia.api import api

    schema = api.get_openapi_schema()
    auth_of = {}
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                auth = operation.auth_param if operation.auth_param is not NOT_SET else router.auth
                auth_of[api.get_openapi_operation_id(operation)] = auth
    for path, methods in schema["paths"].items():
        for method, spec in methods.items():
            yield method.upper(), path, auth_of[spec["operationId"]]


def _api_path(world: World, template: str) -> str:
    values = {
        "reference": world.case.reference,
        "conversation_id": world.conversation.public_id,
        "seq": 1,
        "endpoint_id": world.endpoint.pk,
        "delivery_id": world.delivery.pk,
    }
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), template)


# Valid bodies, so that what is refused is refused for who asks, not for what was sent (a
# complaint is conftest's api_payload).
API_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/cases/{reference}/replies"): {"body": "We are looking into it."},
    ("POST", "/api/v1/cases/{reference}/notes"): {"body": "Called the courier."},
    ("POST", "/api/v1/cases/{reference}/status"): {"status": "pending_agent"},
    ("POST", "/api/v1/cases/{reference}/assign"): {"assignee": "ana"},
    ("POST", "/api/v1/cases/{reference}/transfer"): {"team": "logistics", "note": "Courier."},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"text": "Hello"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages/{seq}/rating"): {"helpful": True},
    ("POST", "/api/v1/conversations/{conversation_id}/survey"): {"score": 5},
    ("POST", "/api/v1/webhooks/endpoints"): {
        "url": "https://crm.example.com/new",
        "events": ["case.created"],
    },
    ("PATCH", "/api/v1/webhooks/endpoints/{endpoint_id}"): {"description": "The CRM"},
}


def _api_ask(
    world: World, role: str, method: str, template: str, token: str | None = None
):  # the response
    token = token if token is not None else world.tokens.get(role, "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    extra: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PATCH", "PUT"):
        body = json.dumps(
            world.complaint
            if template == "/api/v1/complaints"
            else API_BODIES.get((method, template), {})
        )
        extra.update(data=body, content_type="application/json")
    return ask(world, role, method, _api_path(world, template), **extra)


def test_every_api_operation(world):
    observed = {}
    for method, template, _auth in _operations():
        outcomes = []
        for role in ROLES:
            try:
                outcomes.append(outcome_of(_api_ask(world, role, method, template)))
            except Exception as error:
                CRASHES.append(f"{method} {template} as {role}: {error!r}")
                outcomes.append("500")
        observed[(method, template)] = " ".join(outcomes)
    _check(API_MATRIX, observed)


def _scope_of(auth: Any) -> str | None:
    from concilia.accounts.auth import TokenAuth

    return str(auth.scope) if isinstance(auth, TokenAuth) and auth.scope is not None else None


def test_a_token_without_the_operations_scope_gets_403(world):
    from concilia.accounts.models import ApiToken, Scope

    admin = world.users["administrator"]
    checked = []
    for method, template, auth in _operations():
        scope = _scope_of(auth)
        if scope is None:
            continue
        others = [s for s in Scope.values if s != scope]
        token = ApiToken.issue(user=admin, name=f"without {scope}", scopes=others)[1]
        response = _api_ask(world, "administrator", method, template, token)
        assert response.status_code == 403, (method, template, scope, response.content)
        assert response.json()["errors"][0]["code"] == "missing_scope"
        checked.append(template)
    assert len(checked) >= 19  # every helpdesk, complaint and webhook operation
