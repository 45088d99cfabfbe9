"""Concilia's settings plus a sweep job that records each sweep it takes part in, for the test
that runs several `concilia sweep` schedulers at once (test_sweep_schedulers.py)."""

from concilia.settings import *  # noqa: F403

SWEEP_JOBS = {**SWEEP_JOBS, "sweeps recorded": "concilia.core.tests.jobs_for_tests.record_sweep"}  # noqa: F405
