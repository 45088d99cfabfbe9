"""The ASGI entry point keeps no database connection past its request: Django runs each request
in a thread of its own there, and a connection kept for reuse stayed with a finished thread, one
more per request, until PostgreSQL refused new clients ("too many clients already", found by
bench/soak.py on the scaled deployment)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_asgi_application_does_not_keep_database_connections(tmp_path):
    # Given a deployment that asks for connections kept 60 s (PostgreSQL; none is opened here)
    env = {**os.environ, "CONCILIA_HOME": str(tmp_path), "CONCILIA_DB_CONN_MAX_AGE": "60"}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:5432/not_opened"
    # When the web server loads concilia.asgi
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import concilia.asgi; from django.conf import settings; "
            "print(settings.DATABASES['default']['CONN_MAX_AGE'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # Then every request closes its connection when it ends
    assert shown.stdout.split()[-1] == "0"
