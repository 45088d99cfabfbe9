"""Fuzzing the REST API from its own OpenAPI schema (schemathesis, in process through WSGI).

Every operation of /api/v1/openapi.json is called with generated requests, valid and invalid,
by an administrator's token holding every scope; half the time the path parameters are those of
real objects (a case, a conversation, a webhook endpoint), so that generated bodies reach the
code behind the look-ups. No answer may be a 5xx, and every answer must match what the schema
documents (status code, content type, body and headers).

The default run is bounded (CONCILIA_FUZZ_EXAMPLES examples per operation, 8 by default); a long
run: `CONCILIA_FUZZ_EXAMPLES=500 .venv/bin/pytest -q concilia/core/tests/test_api_fuzz.py`.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concilia.api import api

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.specs.openapi.checks import (  # noqa: E402
    negative_data_rejection,
    positive_data_acceptance,
)

EXAMPLES = int(os.environ.get("CONCILIA_FUZZ_EXAMPLES", "8"))

# Every operation of the schema, read when the tests are collected: a new endpoint is fuzzed too.
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, methods in api.get_openapi_schema()["paths"].items()
    for method in methods
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def fuzz_world(open_case, settings, django_user_model):
    """An administrator's token with every scope, and real objects for the path parameters."""
    from concilia.accounts.models import ApiToken, Scope
    from concilia.assistant.actions import start_conversation
    from concilia.core.events import EventType
    from concilia.integrations.webhooks.actions import create_endpoint, send_ping

    # The rate limits have their own tests; here they would only hide what lies behind them.
    settings.CONCILIA_TOKEN_RATE = ""
    settings.CONCILIA_ANON_SUBMISSION_RATE = ""
    settings.CHAT_START_RATE = ""
    settings.CHAT_MESSAGE_RATE = ""
    admin = django_user_model.objects.create_superuser("root", "root@company.test", "pw")
    token = ApiToken.issue(user=admin, name="fuzz", scopes=Scope.values)[1]
    case = open_case()
    conversation = start_conversation(channel="api", language="es").conversation
    endpoint = create_endpoint(
        url="https://crm.example.com/hook", events=EventType.values, actor=admin
    )
    delivery = send_ping(endpoint=endpoint, actor=admin)
    return {
        "headers": {"Authorization": f"Bearer {token}"},
        "real": {
            "reference": case.reference,
            "conversation_id": str(conversation.public_id),
            "seq": conversation.messages.order_by("seq").last().seq,
            "endpoint_id": endpoint.pk,
            "delivery_id": delivery.pk,
        },
    }


@pytest.fixture
def wsgi_app():
    """The WSGI application, keeping the test's database connection open between requests (as
    Django's test client does: each request would otherwise close it)."""
    from django.core import signals
    from django.db import close_old_connections

    from concilia.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield application
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def strategies(operation, real: dict[str, object]):
    """Valid and invalid requests, with generated path parameters or with real objects' ones."""
    from schemathesis import GenerationMode

    names = {parameter.name for parameter in operation.path_parameters}
    known = {name: value for name, value in real.items() if name in names}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    options = [operation.as_strategy(generation_mode=mode) for mode in modes]
    if known:
        options += [operation.as_strategy(generation_mode=m, path_parameters=known) for m in modes]
    return st.one_of(options)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_operation_answers_5xx_or_breaks_its_schema(label, fuzz_world, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategies(operation, fuzz_world["real"]))
    def fuzz(case):
        case.call_and_validate(
            headers=fuzz_world["headers"],
            excluded_checks=[
                # Not "every schema-valid request succeeds": the server checks what a schema
                # cannot say (a team that exists, a public webhook URL, a body unless a template
                # is named) and answers 422 with each field's problem, as the schema documents.
                positive_data_acceptance,
                # Not "every schema-violating request fails": the schemas validate in pydantic's
                # lax mode, which reads 0 as false and "5" as 5 on purpose.
                negative_data_rejection,
            ],
        )

    fuzz()


def test_no_two_api_schemas_share_a_name():
    """OpenAPI components are named after the schema classes: two classes of one name in two
    apps make one overwrite the other in the document (the complaint's customer was once
    documented with the helpdesk's fields)."""
    import importlib
    import inspect
    from pathlib import Path

    from ninja import Schema

    root = Path(__file__).resolve().parents[2]
    seen: dict[str, str] = {}
    for path in sorted(root.glob("**/api.py")):
        module = importlib.import_module(
            ".".join(path.relative_to(root.parent).with_suffix("").parts)
        )
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Schema)
                and value.__module__ == module.__name__
            ):
                assert name not in seen, f"{name} in both {seen[name]} and {module.__name__}"
                seen[name] = module.__name__
    assert len(seen) > 20
