"""Staff sessions: signed out after STAFF_SESSION_MINUTES idle, and held at the two-factor step.

Someone who gave the password but still owes the second factor (or must set one up) is sent to
that step from the staff areas (admin, helpdesk, their account pages) and is anonymous anywhere
else, so no other page treats a half-signed-in session as staff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from concilia.accounts.two_factor import Step, pending_step

SEEN_KEY = "concilia_staff_seen"
# The last request's time is written at most this often (one session write a minute at most).
SEEN_RESOLUTION = 60
# The API authenticates with tokens and never reads the session.
_SESSIONLESS = ("/api/", "/static/")


class StaffSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_SESSIONLESS):
            return self.get_response(request)
        if request.user.is_authenticated:
            self._end_if_idle(request)
        response = self.get_response(request)
        # Signed in just now: the idle clock starts in the session write that sign-in makes.
        if (
            request.session.modified
            and SEEN_KEY not in request.session
            and request.user.is_authenticated
        ):
            request.session[SEEN_KEY] = int(time.time())
        return response

    def _end_if_idle(self, request: HttpRequest) -> None:
        now = int(time.time())
        seen = request.session.get(SEEN_KEY)
        minutes = settings.STAFF_SESSION_MINUTES
        if seen is not None and minutes > 0 and now - seen > minutes * 60:
            logout(request)
            messages.info(
                request,
                ngettext(
                    "You were signed out after %(minutes)d minute without activity. "
                    "Please sign in again.",
                    "You were signed out after %(minutes)d minutes without activity. "
                    "Please sign in again.",
                    minutes,
                )
                % {"minutes": minutes},
            )
        elif seen is None or now - seen >= SEEN_RESOLUTION:
            request.session[SEEN_KEY] = now

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if request.path.startswith(_SESSIONLESS) or not request.user.is_authenticated:
            return None
        if getattr(view, "sign_in_step", False):
            return None
        step = pending_step(request.user)  # type: ignore[arg-type]
        if step is None:
            return None
        if request.path.startswith(tuple(settings.STAFF_AREAS)):
            if step == Step.SET_UP:
                messages.warning(
                    request,
                    _("Your account must use two-factor sign-in. Set it up to continue."),
                )
                target = reverse("accounts:two-factor-setup")
            else:
                target = reverse("accounts:two-factor-verify")
            return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        request.user = AnonymousUser()
        return None
