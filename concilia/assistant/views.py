"""The customers' chat pages: the full page at /chat/ and the frame other sites embed (the widget)."""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.constants import SELF
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET


def _asked_language(request: HttpRequest) -> str | None:
    asked = request.GET.get("lang", "")[:2].lower()
    return asked if asked in {code for code, _name in settings.LANGUAGES} else None


def _strings() -> dict[str, str]:
    """What chat.js says by itself, in the page's language (the assistant's words come from the API)."""
    return {
        "customer": _("You"),
        "assistant": _("Assistant"),
        "agent": _("Agent"),
        "system": _("Notice"),
        "human": _("Talk to a person"),
        "helpful": _("Helpful"),
        "not_helpful": _("Not helpful"),
        "rated": _("Thank you for your feedback."),
        "options": _("Options"),
        "file_sent": _("File sent: %(name)s"),
        "sending_file": _("Sending the file…"),
        "handed_over": _("A person is answering in this conversation."),
        "closed": _("This conversation has ended. You can still write, or start a new one."),
        "empty": _("Write a message first."),
        "too_many": _("Too many messages. Please wait a moment and try again."),
        "not_found": _("This conversation is no longer available. A new one has been started."),
        "failed": _("The message could not be sent. Check your connection and try again."),
        "start_failed": _(
            "The chat could not start. Check your connection and reload the page to try again."
        ),
    }


def _chat(request: HttpRequest, template: str, channel: str) -> HttpResponse:
    return render(
        request,
        template,
        {
            "channel": channel,
            "chat_strings": _strings(),
            "api_url": "/api/v1/conversations",
        },
    )


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    """The full-page chat. `?lang=en` chooses the language as the site's switch does, then comes back."""
    language = _asked_language(request)
    if language is not None:
        response = HttpResponseRedirect(reverse("assistant:chat"))
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
        return response
    return _chat(request, "assistant/chat.html", "page")


def widget_origins() -> list[str]:
    """The sites allowed to frame the chat (settings.WIDGET_ORIGINS), as bare origins."""
    origins = []
    for origin in settings.WIDGET_ORIGINS:
        parts = urlsplit(origin.strip())
        if parts.scheme in ("http", "https") and parts.netloc and not parts.path.strip("/"):
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


@require_GET
@xframe_options_exempt
def chat_embed(request: HttpRequest) -> HttpResponse:
    """The chat with minimal chrome, for the widget's frame: only this page may be framed."""
    # A third-party frame gets no language cookie: the widget says which language in the URL.
    language = _asked_language(request)
    if language is not None:
        translation.activate(language)
        request.LANGUAGE_CODE = language
    response = _chat(request, "assistant/chat_embed.html", "widget")
    # What django-csp's @csp_replace sets, with the sites read when the page is asked for.
    response._csp_replace = {"frame-ancestors": [SELF, *widget_origins()]}  # type: ignore[attr-defined]
    return response
