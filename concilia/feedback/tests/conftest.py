"""The people of the feedback tests: Sara supervises, Ana is an agent of the same team."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group


def _staff(django_user_model, username: str, role: str):
    user = django_user_model.objects.create_user(
        username, f"{username}@company.test", "pw", first_name=username.title(), is_staff=True
    )
    user.groups.add(Group.objects.get(name=f"Role: {role}"))
    return user


@pytest.fixture
def sara(db, django_user_model):
    return _staff(django_user_model, "sara", "supervisor")


@pytest.fixture
def ana(db, django_user_model):
    return _staff(django_user_model, "ana", "agent")


@pytest.fixture
def supervisor_client(client, sara):
    client.force_login(sara)
    return client
