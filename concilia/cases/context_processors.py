"""Template context for the helpdesk pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from concilia.cases.models import Notification


def helpdesk(request: HttpRequest) -> dict[str, Any]:
    """The signed-in person's unread notifications, counted only when a page shows the number."""
    if not request.path.startswith("/helpdesk/") or not request.user.is_authenticated:
        return {}
    return {
        # Pages of higher apps (collective complaints), named in settings: cases imports none.
        "menu_extra": [
            (reverse(name), str(label))
            for name, label, permission in settings.HELPDESK_MENU
            if not permission or request.user.has_perm(permission)
        ],
        "unread": SimpleLazyObject(
            lambda: Notification.objects.filter(
                recipient=request.user, read_at__isnull=True
            ).count()
        ),
    }
