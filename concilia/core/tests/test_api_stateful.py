"""Stateful API fuzzing (schemathesis's state machine over the OpenAPI links, in process through
WSGI): sequences of calls where each follows a link from an earlier answer (a complaint filed,
then read, replied to, noted, its status changed; a webhook endpoint created, then changed,
pinged, rotated, deleted), so generated requests reach the objects the API itself made. No answer
may be a 5xx or break the schema.

The links are those the schema declares (concilia.api: a complaint's reference, a webhook
endpoint's id) and those schemathesis infers from the names of fields and parameters. The
default run is bounded (CONCILIA_FUZZ_SCENARIOS scenarios of at most 6 calls, 20 by default)."""

from __future__ import annotations

import collections
import os

import pytest
from hypothesis import HealthCheck, settings

from concilia.core.tests.test_api_fuzz import fuzz_world, wsgi_app  # noqa: F401 - fixtures

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.specs.openapi.checks import (  # noqa: E402
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
)

SCENARIOS = int(os.environ.get("CONCILIA_FUZZ_SCENARIOS", "20"))

pytestmark = pytest.mark.django_db

CREATING = {
    ("POST", "/api/v1/complaints"): {
        "category": "other",
        "name": "Ana López",
        "email": "ana@example.com",
        "description": "El técnico no vino.",
        "desired_resolution": "Que vuelva.",
        "accept_privacy": True,
    },
    ("POST", "/api/v1/webhooks/endpoints"): {
        "url": "https://crm.example.com/hook",
        "events": ["case.created"],
    },
}


def test_linked_calls_never_answer_5xx_or_break_the_schema(fuzz_world, wsgi_app):  # noqa: F811
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    base = schema.as_state_machine()
    seen = collections.Counter()

    class Calls(base):  # type: ignore[valid-type, misc]
        def before_call(self, case):
            # A valid object where the generated one would be refused for what the schema
            # cannot say (a category that exists, a public URL), so that it is created and the
            # links out of its answer are followed; the generated bodies of the creating calls
            # themselves are test_api_fuzz's, and bodies that are not objects stay as generated.
            valid = CREATING.get((case.method, case.path))
            if valid and isinstance(case.body, dict):
                case.body = dict(valid)
            # The administrator's token on every call, over any Authorization header the
            # generator made up for the security scheme (an invalid one answers 401 and the
            # chain of links stops there).
            headers = {
                name: value
                for name, value in (case.headers or {}).items()
                if name.lower() != "authorization"
            }
            case.headers = {**headers, **fuzz_world["headers"]}

        def after_call(self, response, case):
            seen[(case.method, case.path, response.status_code)] += 1

        def get_call_kwargs(self, case):
            return {"headers": fuzz_world["headers"]}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                # As in test_api_fuzz; and every call carries the token on purpose, so one the
                # generator meant to be invalid is replaced (sign-in refusals: their own tests).
                excluded_checks=[positive_data_acceptance, negative_data_rejection, ignored_auth],
                transport_kwargs=kwargs,
            )

    Calls.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # Then the links were followed: objects the API made were read or changed after it made them
    assert seen[("POST", "/api/v1/complaints", 201)] > 0
    assert seen[("POST", "/api/v1/webhooks/endpoints", 201)] > 0
    # (a reference is never guessed: a case's operation that found it came from a link)
    found = [key for key in seen if key[1].startswith("/api/v1/cases/{") and key[2] != 404]
    assert any(status < 300 or status == 409 for _, _, status in found), seen
