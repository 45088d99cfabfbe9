"""The minimal Django site bench/peer/compare.py runs django-helpdesk in (copied into a temporary
folder; its own virtual environment). Configured from the environment: PEER_HOME (secret key,
media, SQLite file) and PEER_DATABASE ("sqlite" or a postgres://user@host:port/name URL)."""

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

HOME = Path(os.environ["PEER_HOME"])


def database(url: str) -> dict:
    """The same database settings Concilia uses (concilia/settings.py): persistent connections;
    on SQLite WAL, a busy timeout and the write lock taken at BEGIN."""
    if url == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(HOME / "site.sqlite3"),
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;"
                ),
            },
        }
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "postgres",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": parts.port or 5432,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


_key = HOME / "secret_key"
if not _key.exists():
    _key.write_text(secrets.token_urlsafe(50))
SECRET_KEY = _key.read_text()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES = {"default": database(os.environ.get("PEER_DATABASE", "sqlite"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Europe/Madrid"
LANGUAGE_CODE = "en"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.sites",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "helpdesk",
]
SITE_ID = 1
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peersite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
STATIC_ROOT = str(HOME / "static")
MEDIA_ROOT = str(HOME / "media")
LOGIN_URL = "/helpdesk/login/"
# Emails are composed (django-helpdesk renders them in the request) but not sent: Concilia's
# confirmation emails go out from its task worker, so neither server waits on a mail server.
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
# Staff and API clients sign in once: a token per API call, as Concilia's Bearer tokens (DRF's
# default, HTTP Basic, would hash the password on every call).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ]
}
HELPDESK_TEAMS_MODE_ENABLED = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
