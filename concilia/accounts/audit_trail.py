"""Audit entries for staff sign-in and for who may do what: signing in and out, failed
sign-ins, password changes, and roles, teams and permissions given or taken away.

Django's own signals carry these (they fire wherever it happens: the helpdesk's and the admin's
sign-in, `changepassword`, a group's members changed from either side), so the handlers only
record; nothing else hangs on them. The entries name the staff account (`accounts.user`) and,
for a role's permissions, the group; never a password or a typed user name.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.contrib.auth import user_logged_in, user_logged_out, user_login_failed
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.http import HttpRequest

from concilia.accounts.models import User
from concilia.core import audit

# Flags that change what a person may do, compared before each save that may touch them.
_POWERS = ("is_active", "is_staff", "is_superuser")


def _from(request: HttpRequest | None) -> AbstractContextManager[None]:
    """The signal's request as the entry's origin (the same one a page's middleware bound)."""
    return audit.serving(request) if request is not None else nullcontext()


def signed_in(*, sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    with _from(request):
        audit.record(audit.SIGN_IN, target=user, actor=user, detail={"step": "password"})


def signed_out(*, sender: Any, request: HttpRequest, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        with _from(request):
            audit.record(audit.SIGN_OUT, target=user, actor=user)


def sign_in_failed(
    *, sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """A wrong password (or an inactive account): the account's, when the name is one; a name
    that is none is not kept (people type passwords and emails into that field)."""
    name = credentials.get(User.USERNAME_FIELD) or credentials.get("username") or ""
    user = User.objects.filter(**{User.USERNAME_FIELD: name}).first() if name else None
    with _from(request):
        audit.record(
            audit.SIGN_IN_FAILED,
            target=user if user is not None else User,
            actor=user,
            detail={"step": "password", "known_user": user is not None},
        )


def _old_powers(*, sender: Any, instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and not set(_POWERS) & set(update_fields)):
        instance._audit_old_powers = None  # type: ignore[attr-defined]
        return
    instance._audit_old_powers = (  # type: ignore[attr-defined]
        User.objects.filter(pk=instance.pk).values(*_POWERS).first()
    )


def account_saved(*, sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    """A new password (`set_password` leaves it pending until the save), or changed powers."""
    if created:
        return
    old = getattr(instance, "_audit_old_powers", None) or {}
    changed = {name: getattr(instance, name) for name in _POWERS if name in old}
    changed = {name: value for name, value in changed.items() if old[name] != value}
    if changed:
        audit.record(audit.CHANGE, target=instance, detail=changed)
    if getattr(instance, "_password", None) is not None:
        audit.record(audit.CHANGE, target=instance, fields=["password"])


def _names(model: type, pks: Any) -> list[str]:
    if model is Permission:
        rows = Permission.objects.filter(pk__in=pks).values_list(
            "content_type__app_label", "codename"
        )
        return sorted(f"{app}.{codename}" for app, codename in rows)
    return sorted(str(row) for row in model.objects.filter(pk__in=pks))  # type: ignore[attr-defined]


def _given_or_taken(action: str) -> str | None:
    return {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}.get(action)


def membership_changed(
    *, sender: Any, instance: Any, action: str, reverse: bool, model: type, pk_set: Any, **kw: Any
) -> None:
    """Groups (roles, teams) or permissions given to or taken from a person or a role, from
    either side (`user.groups.add(group)` or `group.user_set.add(user)`): an entry per person
    or group that gained or lost them, naming what."""
    how = _given_or_taken(action)
    if how is None:
        return
    if action == "pre_clear":  # what is about to go
        pk_set = set(getattr(instance, _accessor(sender, reverse)).values_list("pk", flat=True))
    if not pk_set:
        return
    if not reverse:  # instance gains or loses the rows named by pk_set
        audit.record(
            audit.CHANGE, target=instance, detail={f"{_what(sender)}_{how}": _names(model, pk_set)}
        )
        return
    for holder in model.objects.filter(pk__in=pk_set):  # each of them gains or loses instance
        audit.record(
            audit.CHANGE,
            target=holder,
            detail={f"{_what(sender)}_{how}": _names(type(instance), [instance.pk])},
        )


_THROUGH = {
    User.groups.through: ("groups", "user_set"),
    User.user_permissions.through: ("user_permissions", "user_set"),
    Group.permissions.through: ("permissions", "group_set"),
}


def _accessor(sender: Any, reverse: bool) -> str:
    forward, backward = _THROUGH[sender]
    return backward if reverse else forward


def _what(sender: Any) -> str:
    return "groups" if sender is User.groups.through else "permissions"


def connect() -> None:
    """Called once from AccountsConfig.ready."""
    user_logged_in.connect(signed_in, dispatch_uid="audit_signed_in")
    user_logged_out.connect(signed_out, dispatch_uid="audit_signed_out")
    user_login_failed.connect(sign_in_failed, dispatch_uid="audit_sign_in_failed")
    pre_save.connect(_old_powers, sender=User, dispatch_uid="audit_old_powers")
    post_save.connect(account_saved, sender=User, dispatch_uid="audit_account_saved")
    for through in _THROUGH:
        m2m_changed.connect(membership_changed, sender=through, dispatch_uid=f"audit_{through}")
