"""The helpdesk's people and teams (Ana of Customer care), for the token tests."""

from concilia.cases.tests.conftest import ana, office, teams  # noqa: F401 - fixtures
