"""Deployment checks of staff sign-in, run by `concilia check --deploy`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning


def two_factor_required(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if settings.TWO_FACTOR_REQUIRED != "none":
        return []
    return [
        Warning(
            "Administrators may sign in without a second factor.",
            hint="Unset CONCILIA_TWO_FACTOR_REQUIRED (or set it to 'administrators' or 'staff').",
            id="accounts.W001",
        )
    ]
