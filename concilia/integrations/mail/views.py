"""The inbound-mail webhook: a mail provider (Mailgun, SendGrid, Postmark, or a local MTA's pipe
to curl) posts each raw message; it is kept at once and processed in the background."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from concilia.core.tasks import enqueue_with_change
from concilia.integrations.mail.actions import store_email
from concilia.integrations.mail.models import Mailbox
from concilia.integrations.mail.tasks import process_inbound_email

# Form fields and JSON keys providers put the raw message in (SendGrid, Mailgun, Postmark).
_FIELDS = ("email", "body-mime", "RawEmail", "raw")
_RAW_TYPES = ("message/rfc822", "text/plain", "application/octet-stream")


class BadPost(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _secret_given(request: HttpRequest) -> str:
    kind, _space, value = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() == "bearer":
        return value.strip()
    if kind.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def _read_body(request: HttpRequest) -> bytes:
    # Read past Django's form limits on purpose: raw messages are large. One byte over the
    # limit is enough to know.
    limit = settings.CONCILIA_MAIL_MAX_BYTES * 2
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BadPost(413, _("The email is larger than this server accepts."))
    return body


def _from_form(content_type: str, body: bytes) -> bytes:
    """The raw message in a multipart form (a file or a field), read with the email parser so
    that large fields are not held to Django's limits for ordinary forms."""
    form = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body,
        policy=email.policy.HTTP,
    )
    for part in form.iter_parts() if form.is_multipart() else ():
        if part.get_param("name", header="content-disposition") in _FIELDS:
            return part.get_payload(decode=True) or b""
    return b""


def _raw_message(request: HttpRequest) -> bytes:
    content_type = request.META.get("CONTENT_TYPE", "")
    body = _read_body(request)
    kind = content_type.split(";")[0].strip().lower()
    if kind in _RAW_TYPES:
        raw = body
    elif kind == "multipart/form-data":
        raw = _from_form(content_type, body)
    elif kind == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadPost(400, _("The request's JSON could not be read.")) from None
        found = next((data[k] for k in _FIELDS if isinstance(data, dict) and k in data), "")
        raw = found.encode("utf-8") if isinstance(found, str) else b""
    else:
        raw = b""
    if not raw.strip():
        raise BadPost(
            400,
            _(
                "The request carries no email: post the raw message as message/rfc822, as a form "
                "field named “email” or “body-mime”, or as JSON with “RawEmail”."
            ),
        )
    if len(raw) > settings.CONCILIA_MAIL_MAX_BYTES:
        raise BadPost(413, _("The email is larger than this server accepts."))
    return raw


@csrf_exempt
@require_POST
def inbound(request: HttpRequest, slug: str) -> JsonResponse:
    mailbox = Mailbox.objects.filter(slug=slug, active=True).first()
    if mailbox is None:
        return JsonResponse({"detail": _("No such mailbox.")}, status=404)
    if not hmac.compare_digest(_secret_given(request).encode(), mailbox.inbound_secret.encode()):
        response = JsonResponse({"detail": _("Wrong or missing credentials.")}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="concilia-mail"'
        return response
    try:
        raw = _raw_message(request)
    except BadPost as error:
        return JsonResponse({"detail": str(error)}, status=error.status)
    stored = store_email(raw=raw, mailbox=mailbox)
    if stored.created:
        enqueue_with_change(process_inbound_email, email_id=stored.email.pk)
    return JsonResponse({"id": stored.email.pk, "duplicate": not stored.created}, status=202)
