"""The cases app's personas (Ana, an agent of the care team) for the customers' tests."""

from concilia.cases.tests.conftest import ana, office, teams  # noqa: F401 - shared fixtures
