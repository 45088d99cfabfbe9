"""A mail provider's inbound webhook: the raw message in the shapes providers post it, kept at
once and processed in the background; wrong credentials and bad posts answered clearly."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from concilia.cases.models import Case, Channel
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome
from concilia.integrations.tests.test_mail_inbound import email_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox():
    return Mailbox.objects.create(name="Web", slug="web", address="help@example.com")


def _basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"provider:{secret}".encode()).decode()


def _post(mailbox, body, content_type="message/rfc822", secret=None, **extra):
    return Client(HTTP_ACCEPT_LANGUAGE="en").post(
        f"/integrations/mail/inbound/{mailbox.slug}/",
        data=body,
        content_type=content_type,
        HTTP_AUTHORIZATION=_basic(mailbox.inbound_secret if secret is None else secret),
        **extra,
    )


def test_a_raw_message_is_kept_at_once_and_opens_a_case_in_the_background(mailbox, run_tasks):
    response = _post(mailbox, email_from())

    assert response.status_code == 202
    email = InboundEmail.objects.get(pk=response.json()["id"])
    assert email.outcome == Outcome.RECEIVED and email.raw
    run_tasks()
    email.refresh_from_db()
    assert email.outcome == Outcome.NEW_CASE
    assert email.case.channel == Channel.EMAIL


def test_the_same_post_twice_is_kept_once(mailbox, run_tasks):
    raw = email_from()
    first = _post(mailbox, raw)
    second = _post(mailbox, raw)

    assert second.json() == {"id": first.json()["id"], "duplicate": True}
    run_tasks()
    assert Case.objects.count() == 1


def test_sendgrid_form_field_and_postmark_json_shapes(mailbox, run_tasks):
    boundary = "XyZ"
    raw = email_from(sender="a@example.org")
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="to"\r\n\r\nhelp@example.com\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
        ).encode()
        + raw
        + f"\r\n--{boundary}--\r\n".encode()
    )
    sendgrid = _post(mailbox, form, content_type=f"multipart/form-data; boundary={boundary}")
    postmark = _post(
        mailbox,
        json.dumps({"RawEmail": email_from(sender="b@example.org").decode()}),
        content_type="application/json",
    )

    assert (sendgrid.status_code, postmark.status_code) == (202, 202)
    run_tasks()
    customers = set(Case.objects.values_list("customer__email", flat=True))
    assert customers == {"a@example.org", "b@example.org"}


def test_wrong_credentials_unknown_mailbox_and_empty_posts_are_refused_clearly(mailbox):
    wrong = _post(mailbox, email_from(), secret="guess")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Basic")
    bearer = Client().post(
        f"/integrations/mail/inbound/{mailbox.slug}/",
        data=email_from(),
        content_type="message/rfc822",
        HTTP_AUTHORIZATION=f"Bearer {mailbox.inbound_secret}",
    )
    assert bearer.status_code == 202
    unknown = Client().post(
        "/integrations/mail/inbound/nope/", data=b"x", content_type="text/plain"
    )
    assert unknown.status_code == 404
    empty = _post(mailbox, b"", content_type="message/rfc822")
    assert empty.status_code == 400
    assert "carries no email" in empty.json()["detail"]
    bad_json = _post(mailbox, b"{nope", content_type="application/json")
    assert bad_json.status_code == 400
    spanish = Client(HTTP_ACCEPT_LANGUAGE="es").post(
        f"/integrations/mail/inbound/{mailbox.slug}/",
        data=b"",
        content_type="message/rfc822",
        HTTP_AUTHORIZATION=_basic(mailbox.inbound_secret),
    )
    assert "carries no email" not in spanish.json()["detail"]
    assert Client().get(f"/integrations/mail/inbound/{mailbox.slug}/").status_code == 405
    assert InboundEmail.objects.count() == 1


def test_a_message_over_the_limit_is_refused_with_413(mailbox, settings):
    settings.CONCILIA_MAIL_MAX_BYTES = 1000
    response = _post(mailbox, email_from(text="x" * 5000))

    assert response.status_code == 413
    assert InboundEmail.objects.count() == 0


def test_a_mail_server_can_pipe_a_message_to_the_command(mailbox, monkeypatch, capsys):
    import io
    import sys

    from django.core.management import call_command
    from django.core.management.base import CommandError

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(email_from())))
    call_command("mail", "receive", "--mailbox", mailbox.slug)

    case = Case.objects.get()
    assert capsys.readouterr().out.split() == [
        str(InboundEmail.objects.get().pk),
        Outcome.NEW_CASE,
        case.reference,
    ]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(CommandError):
        call_command("mail", "receive", "--mailbox", mailbox.slug)
    with pytest.raises(CommandError):
        call_command("mail", "receive", "--mailbox", "nope")
