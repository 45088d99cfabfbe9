"""Concilia's one settings module: everything a deployment changes comes from the environment."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envsecret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (for Docker/Kubernetes secrets)."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


# Everything Concilia keeps on disk (SQLite database, attachments, keys, outgoing demo mail).
HOME = Path(os.environ.get("CONCILIA_HOME") or Path.cwd() / "var").resolve()


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in CONCILIA_HOME."""
    configured = envsecret("CONCILIA_SECRET_KEY")
    if configured:
        return configured
    key_file = HOME / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    HOME.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process starting at the same moment made it first
        time.sleep(0.2)  # let it finish writing
        return key_file.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
(HOME / "static").mkdir(parents=True, exist_ok=True)
DEBUG = envbool("CONCILIA_DEBUG", False)
ALLOWED_HOSTS = envlist("CONCILIA_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CONCILIA_CSRF_TRUSTED_ORIGINS", [])
# The public address used in links sent by email.
BASE_URL = os.environ.get("CONCILIA_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    # Staff two-factor sign-in (concilia.accounts.two_factor): TOTP apps and recovery codes.
    # First, so that accounts' admin replaces their device admins (accounts.actions keeps the
    # devices and the user's flag together).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "concilia.core",
    "concilia.accounts",
    "concilia.customers",
    "concilia.cases",
    "concilia.intake",
    "concilia.nlu",
    "concilia.resolution",
    "concilia.assistant",
    "concilia.integrations",
    "concilia.privacy",
    "concilia.analytics",
    "concilia.feedback",
    # django.contrib.admin, whose pages of models with personal data leave audit entries.
    "concilia.core.admin_apps.AuditedAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "csp",
]

MIDDLEWARE = [
    # First: the request id, the request counters of /metrics and the access line (operations.md).
    "concilia.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "concilia.core.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "concilia.core.middleware.AuditContextMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Staff sessions: the two-factor step and the idle timeout (after messages: it leaves one).
    "concilia.accounts.middleware.StaffSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "concilia.urls"
WSGI_APPLICATION = "concilia.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "admin:login"
# Where the helpdesk's sign-in goes when no page was asked for.
LOGIN_REDIRECT_URL = "helpdesk:queue"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "concilia.cases.context_processors.helpdesk",
            ],
        },
    },
]

# Database: SQLite in CONCILIA_HOME unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{HOME / 'concilia.sqlite3'}",
        conn_max_age=envint("CONCILIA_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "concilia.core.sqlite_backend"
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["OPTIONS"] = {
        # Several web processes and the worker write to one file: wait for the lock
        # instead of failing, take the write lock at BEGIN to avoid upgrade deadlocks.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;"
        ),
    }
    # Tests use a real file too, so that several connections meet as they do in production.
    DATABASES["default"]["TEST"] = {"NAME": str(HOME / "test-concilia.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Shared between the web processes of one machine, nothing to install.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(HOME / "cache"),
        }
    }

# Background jobs: the database backend by default (`concilia serve` starts its worker), or the RQ
# backend on Redis at scale (the `rq` extra; README, "Scaled deployment"). Same job code on both.
TASKS_BACKEND = os.environ.get("CONCILIA_TASKS_BACKEND", "database")
# Jobs go to one of these queues by kind, so that a burst of one kind never holds up another:
# what a customer is waiting for, email in and out, webhooks and the CRM, the rest (docs/workers.md).
JOB_QUEUES = ["customer", "default", "mail", "webhooks"]
# Longest a job may run: RQ stops it then; a job claimed longer ago by a worker on another machine
# that no longer answers is run again (concilia.core.workers).
JOB_TIMEOUT = envint("CONCILIA_JOB_TIMEOUT", 600)
if TASKS_BACKEND == "rq":
    INSTALLED_APPS += ["django_rq"]
    RQ_QUEUES = {
        name: {
            "URL": os.environ.get("CONCILIA_REDIS_URL") or REDIS_URL or "redis://127.0.0.1:6379/0",
            "DEFAULT_TIMEOUT": JOB_TIMEOUT,
        }
        for name in JOB_QUEUES
    }
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": JOB_QUEUES}}
elif TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": JOB_QUEUES}}
else:
    raise ImproperlyConfigured("CONCILIA_TASKS_BACKEND must be 'database' or 'rq'.")
# A failing job (concilia.core.jobs) is tried this many times in all, waiting about BACKOFF
# seconds, then twice that…, up to an hour, before it is kept as a dead job for an administrator.
JOB_ATTEMPTS = envint("CONCILIA_JOB_ATTEMPTS", 8)
JOB_BACKOFF_SECONDS = float(os.environ.get("CONCILIA_JOB_BACKOFF_SECONDS") or 30)
JOB_MAX_BACKOFF_SECONDS = float(os.environ.get("CONCILIA_JOB_MAX_BACKOFF_SECONDS") or 3600)

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(HOME / "files")},
    },
    # Attachments live outside the web root and are only served through a permission check,
    # encrypted (docs/encryption.md): "backend" and "options" name the storage that keeps them.
    "attachments": {
        "BACKEND": "concilia.core.storage.EncryptedStorage",
        "OPTIONS": {
            "backend": "django.core.files.storage.FileSystemStorage",
            "options": {"location": str(HOME / "attachments"), "base_url": None},
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Encryption at rest (docs/encryption.md): Fernet keys, comma-separated (or one a line in the
# _FILE), the first encrypts and all decrypt; unset, they are kept in HOME/keys/encryption.keys
# (created on first use, 0600).
ENCRYPTION_KEYS = [
    key.strip()
    for key in (envsecret("CONCILIA_ENCRYPTION_KEYS") or "").replace("\n", ",").split(",")
    if key.strip()
]
# The key of the keyed hashes that find an encrypted email; unset, HOME/keys/blind_index.key.
BLIND_INDEX_KEY = envsecret("CONCILIA_BLIND_INDEX_KEY") or ""
STATIC_URL = "/static/"
STATIC_ROOT = HOME / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve the files shipped in the package directly: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Internationalisation
LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = os.environ.get("CONCILIA_TIME_ZONE", "Europe/Madrid")
LANGUAGE_COOKIE_NAME = "concilia_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"

# Email
EMAIL_BACKEND = os.environ.get(
    "CONCILIA_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = str(HOME / "mail")
EMAIL_HOST = os.environ.get("CONCILIA_EMAIL_HOST", "localhost")
EMAIL_PORT = envint("CONCILIA_EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("CONCILIA_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envsecret("CONCILIA_EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = envbool("CONCILIA_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = envint("CONCILIA_EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = os.environ.get("CONCILIA_FROM_EMAIL", "Concilia <no-reply@concilia.localhost>")
# Where customers' replies should go (a mailbox Concilia reads, docs/email.md); empty: From.
CONCILIA_REPLY_TO_EMAIL = os.environ.get("CONCILIA_REPLY_TO_EMAIL", "")
# The domain of our Message-IDs (threads replies to their case); empty: BASE_URL's host.
EMAIL_MESSAGE_ID_DOMAIN = os.environ.get("CONCILIA_MESSAGE_ID_DOMAIN", "")
# Inbound email: the largest message read from a mailbox or accepted from a provider's webhook,
# how many emails from one address within an hour are a mail loop, the IMAP timeout, and how
# many messages one reading of a mailbox takes at most.
CONCILIA_MAIL_MAX_BYTES = envint("CONCILIA_MAIL_MAX_BYTES", 40 * 1024 * 1024)
CONCILIA_MAIL_LOOP_LIMIT = envint("CONCILIA_MAIL_LOOP_LIMIT", 20)
CONCILIA_MAIL_TIMEOUT_SECONDS = envint("CONCILIA_MAIL_TIMEOUT_SECONDS", 30)
CONCILIA_MAIL_BATCH = envint("CONCILIA_MAIL_BATCH", 200)

# Security (SECURITY.md). CONCILIA_ENV=production is for a site served over HTTPS: it turns on
# secure cookies, HTTPS redirects and HSTS (each can still be set on its own), and
# `concilia check --deploy` is then clean. Development (the default) serves plain HTTP.
CONCILIA_ENV = os.environ.get("CONCILIA_ENV", "development").strip().lower()
if CONCILIA_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("CONCILIA_ENV must be 'development' or 'production'.")
PRODUCTION = CONCILIA_ENV == "production"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("CONCILIA_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = envbool("CONCILIA_SSL_REDIRECT", PRODUCTION)
# HSTS: a year in production; subdomains included and preload asked for unless turned off.
SECURE_HSTS_SECONDS = envint("CONCILIA_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("CONCILIA_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = envbool("CONCILIA_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Every page refuses to be framed; the chat widget's frame (/chat/embed/) is exempt and names the
# sites allowed to frame it in its CSP frame-ancestors (WIDGET_ORIGINS).
X_FRAME_OPTIONS = "DENY"
# How many reverse proxies stand in front of Concilia (to find the client's address).
NUM_PROXIES = envint("CONCILIA_NUM_PROXIES", 0)
# Behind a proxy that ends TLS, the header it sets to say the request came over HTTPS: by
# default X-Forwarded-Proto when CONCILIA_NUM_PROXIES is set ("none": trust no header). The
# proxy must overwrite the header a client sends.
_proxy_ssl_header = os.environ.get(
    "CONCILIA_PROXY_SSL_HEADER", "X-Forwarded-Proto" if NUM_PROXIES else ""
).strip()
if _proxy_ssl_header and _proxy_ssl_header.lower() != "none":
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_ssl_header.upper().replace("-", "_"),
        "https",
    )
# Content-Security-Policy (django-csp): our own scripts and styles only, no inline code (a
# page that needs an inline block gives it the request's nonce); frames only for the widget.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        # The hash lets the one inline <style> of Django's own change-list template through.
        "style-src": [
            "'self'",
            NONCE,
            "'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='",
        ],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "upgrade-insecure-requests": PRODUCTION,
    }
}

# Staff sign-in (concilia.accounts): Argon2id first, so that older hashes are upgraded when
# their owner signs in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": envint("CONCILIA_PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Lock-out (concilia.accounts.lockout): this many failed sign-ins (password or two-factor code)
# lock the user name for LOCKOUT_MINUTES; an address is locked after more failures, since an
# office's staff often share one.
LOGIN_FAILURES_PER_USER = envint("CONCILIA_LOGIN_FAILURES_PER_USER", 5)
LOGIN_FAILURES_PER_ADDRESS = envint("CONCILIA_LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_LOCKOUT_MINUTES = envint("CONCILIA_LOGIN_LOCKOUT_MINUTES", 15)
# Who must sign in with a second factor: "administrators" (superusers and the administrator
# role), "staff" (everyone) or "none" (then `check --deploy` warns). Anyone may turn it on.
TWO_FACTOR_REQUIRED = os.environ.get("CONCILIA_TWO_FACTOR_REQUIRED", "administrators").strip()
if TWO_FACTOR_REQUIRED not in {"administrators", "staff", "none"}:
    raise ImproperlyConfigured(
        "CONCILIA_TWO_FACTOR_REQUIRED must be 'administrators', 'staff' or 'none'."
    )
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = os.environ.get("CONCILIA_TOTP_ISSUER", "Concilia")
# Staff are signed out after this many minutes without a request.
STAFF_SESSION_MINUTES = envint("CONCILIA_STAFF_SESSION_MINUTES", 60)
# Where a signed-in person must have finished the two-factor step (elsewhere they are anonymous).
STAFF_AREAS = ("/admin/", "/helpdesk/", "/accounts/")

# Uploads: the per-file limit is checked by the attachment validator; this bounds the whole request.
CONCILIA_MAX_ATTACHMENT_BYTES = envint("CONCILIA_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
CONCILIA_MAX_ATTACHMENTS = envint("CONCILIA_MAX_ATTACHMENTS", 5)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Anonymous submissions (web form and API together) per client address.
CONCILIA_ANON_SUBMISSION_RATE = os.environ.get("CONCILIA_ANON_SUBMISSION_RATE", "20/hour")
# Tracking sign-in requests per client address.
CONCILIA_SIGN_IN_RATE = os.environ.get("CONCILIA_SIGN_IN_RATE", "10/hour")
# API calls per token (0 = unlimited); over it the API answers 429 with Retry-After.
CONCILIA_TOKEN_RATE = os.environ.get("CONCILIA_TOKEN_RATE", "600/minute")
# Minutes a rotated API token keeps working beside its successor (0: it stops at once).
CONCILIA_TOKEN_ROTATION_GRACE_MINUTES = envint("CONCILIA_TOKEN_ROTATION_GRACE_MINUTES", 0)
# How long a one-time sign-in link stays valid.
CONCILIA_SIGN_IN_LINK_MINUTES = envint("CONCILIA_SIGN_IN_LINK_MINUTES", 30)
# How long a signed-in customer stays signed in.
CONCILIA_CUSTOMER_SESSION_HOURS = envint("CONCILIA_CUSTOMER_SESSION_HOURS", 8)
# How often alerts and deadline warnings are swept (one sweep per period across all processes).
CONCILIA_SWEEP_SECONDS = envint("CONCILIA_SWEEP_SECONDS", 60)
# Sections of higher apps on the helpdesk's case page: callables (request, case) -> HTML.
HELPDESK_CASE_PANELS = [
    "concilia.resolution.views.collective_panel",
    "concilia.resolution.panels.decisions_panel",
]
# What else each sweep runs (name in its summary: function taking now=, returning a count).
SWEEP_JOBS = {
    "jobs handed over after a crash": "concilia.core.tasks.hand_over_left",
    "offers expired": "concilia.resolution.actions.expire_offers",
    "collective complaints raised": "concilia.resolution.collective.sweep",
    "spikes of similar complaints found": "concilia.resolution.trends.sweep",
    "webhook endpoints with deliveries due": "concilia.integrations.webhooks.tasks.sweep",
    "mailboxes read": "concilia.integrations.mail.tasks.sweep",
    "telegram updates forgotten": "concilia.integrations.telegram.tasks.forget_old_updates",
    "expired personal data anonymised or deleted": "concilia.privacy.retention.sweep",
    "data-subject requests near their deadline": "concilia.privacy.tasks.sweep",
    "analytics refreshed": "concilia.analytics.refresh.sweep",
    "weekly analytics summaries sent": "concilia.analytics.tasks.weekly_sweep",
}
# How often the retention job (concilia.privacy.retention) runs within the sweep, in hours.
CONCILIA_RETENTION_HOURS = envint("CONCILIA_RETENTION_HOURS", 24)
# Each app's declared personal data and its export and erasure hooks (concilia.core.personal_data),
# in the order erasure runs them: higher apps first.
PERSONAL_DATA_MODULES = [
    "concilia.feedback.personal_data",
    "concilia.integrations.personal_data",
    "concilia.assistant.personal_data",
    "concilia.resolution.personal_data",
    "concilia.intake.personal_data",
    "concilia.cases.personal_data",
    "concilia.privacy.personal_data",
    "concilia.core.personal_data",
    "concilia.customers.personal_data",
]
# The job that delivers the outbox's events (queued by concilia.core.events.emit on commit).
OUTBOX_DISPATCHER = "concilia.integrations.webhooks.tasks.dispatch_events"
# Webhooks (docs/webhooks.md): seconds a receiver has to answer, attempts before giving up, and
# the backoff between them (doubling from the base up to the cap, half of it random). A worker's
# claim on a delivery lapses after CLAIM seconds (more than the timeout): then it is sent again.
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("CONCILIA_WEBHOOK_TIMEOUT_SECONDS") or 10)
WEBHOOK_MAX_ATTEMPTS = envint("CONCILIA_WEBHOOK_MAX_ATTEMPTS", 15)
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("CONCILIA_WEBHOOK_RETRY_BASE_SECONDS") or 10)
WEBHOOK_RETRY_CAP_SECONDS = float(os.environ.get("CONCILIA_WEBHOOK_RETRY_CAP_SECONDS") or 6 * 3600)
WEBHOOK_CLAIM_SECONDS = float(os.environ.get("CONCILIA_WEBHOOK_CLAIM_SECONDS") or 60)
# Receivers on private, loopback or link-local addresses are refused unless this is on (an
# endpoint's URL must not reach into Concilia's own network; turn it on for internal receivers).
WEBHOOK_ALLOW_PRIVATE_URLS = envbool("CONCILIA_WEBHOOK_ALLOW_PRIVATE_URLS", False)
# Links of higher apps in the helpdesk's menu: (URL name, label, permission needed or "").
HELPDESK_MENU = [
    ("collective:list", _("Collective complaints"), "accounts.supervise_teams"),
    ("trends:list", _("Trends"), "accounts.supervise_teams"),
    ("analytics:dashboard", _("Analytics"), "accounts.supervise_teams"),
    ("analytics:mine", _("My figures"), "accounts.work_cases"),
    ("feedback:queue", _("Feedback"), "accounts.supervise_teams"),
    ("privacy:audit", _("Audit log"), "core.view_auditentry"),
    ("privacy:requests", _("Data-subject requests"), "privacy.handle_datasubjectrequest"),
    (
        "privacy:accountability",
        _("Accountability documents"),
        "privacy.download_accountability_documents",
    ),
]

# Logs (docs/operations.md): "text" for a person reading a terminal, "json" (one object per line,
# with the request id) for a log collector in production. CONCILIA_ACCESS_LOG adds a line per
# request answered (on by default with json).
LOG_FORMAT = os.environ.get("CONCILIA_LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("CONCILIA_LOG_FORMAT must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {
            "()": "concilia.core.logging.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "concilia.core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("CONCILIA_LOG_LEVEL", "WARNING")},
    "loggers": {
        "concilia.requests": {
            "level": "INFO" if envbool("CONCILIA_ACCESS_LOG", LOG_FORMAT == "json") else "WARNING"
        }
    },
}
# /metrics for Prometheus (docs/operations.md): with a token, scrapers send it as a bearer token;
# without one, only requests from this machine's loopback are answered.
METRICS_TOKEN = envsecret("CONCILIA_METRICS_TOKEN") or ""
# Gauges of higher apps read at scrape time: callables returning Prometheus metric families.
METRICS_SOURCES = [
    "concilia.cases.metrics.collect",
    "concilia.integrations.webhooks.metrics.collect",
]

# Language understanding (concilia.nlu): "local" (scikit-learn, no network) or "llm".
NLU_ENGINE = os.environ.get("CONCILIA_NLU_ENGINE", "local")
# Models trained with `concilia nlu train` are written here; the shipped ones are in the package.
NLU_MODEL_DIR = HOME / "nlu"
NLU_CATEGORY_MODEL = os.environ.get("CONCILIA_NLU_CATEGORY_MODEL", "categories")
NLU_KIND_MODEL = os.environ.get("CONCILIA_NLU_KIND_MODEL", "kinds")
# Optional language model through any OpenAI-compatible endpoint (a local server or a provider).
# It understands and words replies; it never decides outcomes.
LLM_BASE_URL = os.environ.get("CONCILIA_LLM_BASE_URL", "").rstrip("/")
LLM_MODEL = os.environ.get("CONCILIA_LLM_MODEL", "")
LLM_API_KEY = envsecret("CONCILIA_LLM_API_KEY") or ""
LLM_TIMEOUT = float(os.environ.get("CONCILIA_LLM_TIMEOUT", "8"))
LLM_WORD_REPLIES = envbool("CONCILIA_LLM_WORD_REPLIES", False)

# Ports (concilia.core.ports): the shop that knows orders, the policies that triage new cases.
ORDER_LOOKUP = os.environ.get(
    "CONCILIA_ORDER_LOOKUP", "concilia.integrations.commerce.demo.DemoShop"
)
TRIAGE = os.environ.get("CONCILIA_TRIAGE", "concilia.resolution.triage.triage")
# Who carries out agreed refunds, credits and return labels (a shop connector).
FULFILMENT = os.environ.get("CONCILIA_FULFILMENT", "concilia.integrations.commerce.demo.DemoShop")
# Connectors (concilia.integrations, docs/connectors.md): every call to another system has a
# timeout, and after BREAKER_THRESHOLD failures in a row it is skipped for BREAKER_COOL_DOWN s.
CONNECTOR_TIMEOUT = float(os.environ.get("CONCILIA_CONNECTOR_TIMEOUT", "5"))
CONNECTOR_BREAKER_THRESHOLD = envint("CONCILIA_CONNECTOR_BREAKER_THRESHOLD", 5)
CONNECTOR_BREAKER_COOL_DOWN = float(os.environ.get("CONCILIA_CONNECTOR_BREAKER_COOL_DOWN", "60"))


def envjson(name: str) -> dict:
    """A JSON object from NAME, or from the file named by NAME_FILE; {} when neither is set."""
    import json

    value = envsecret(name)
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise ValueError(f"{name} (or {name}_FILE) is not valid JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} (or {name}_FILE) must be a JSON object")
    return parsed


# A shop with its own REST API (commerce.rest.GenericRestShop): URL templates and field mappings.
SHOP_REST = envjson("CONCILIA_SHOP_REST")
SHOP_REST_TOKEN = envsecret("CONCILIA_SHOP_REST_TOKEN") or ""
# WooCommerce (commerce.woocommerce.WooCommerceShop): the store's URL and a REST API key pair.
WOOCOMMERCE_URL = os.environ.get("CONCILIA_WOOCOMMERCE_URL", "").rstrip("/")
WOOCOMMERCE_KEY = envsecret("CONCILIA_WOOCOMMERCE_KEY") or ""
WOOCOMMERCE_SECRET = envsecret("CONCILIA_WOOCOMMERCE_SECRET") or ""
# Keys as query parameters instead of HTTP Basic (for servers that drop the Authorization header).
WOOCOMMERCE_QUERY_AUTH = envbool("CONCILIA_WOOCOMMERCE_QUERY_AUTH", False)
# Refunds through the payment gateway (True) or recorded as manual refunds (False).
WOOCOMMERCE_API_REFUND = envbool("CONCILIA_WOOCOMMERCE_API_REFUND", True)
# The promised delivery date: an order meta key holding it, else placed date + N days (0: none).
WOOCOMMERCE_PROMISE_META = os.environ.get("CONCILIA_WOOCOMMERCE_PROMISE_META", "")
WOOCOMMERCE_PROMISE_DAYS = envint("CONCILIA_WOOCOMMERCE_PROMISE_DAYS", 0)
# The CRM (core.ports.CustomerDirectory): none by default; CRM_PUSH sends customers and case
# summaries to it in the background when cases are opened and closed.
CUSTOMER_DIRECTORY = os.environ.get(
    "CONCILIA_CUSTOMER_DIRECTORY", "concilia.core.ports.NoCustomerDirectory"
)
CRM_PUSH = envbool("CONCILIA_CRM_PUSH", False)
CRM_REST = envjson("CONCILIA_CRM_REST")
CRM_REST_TOKEN = envsecret("CONCILIA_CRM_REST_TOKEN") or ""
HUBSPOT_URL = os.environ.get("CONCILIA_HUBSPOT_URL", "https://api.hubapi.com").rstrip("/")
HUBSPOT_TOKEN = envsecret("CONCILIA_HUBSPOT_TOKEN") or ""
# A contact property holding the customer's tier (e.g. a custom "customer_tier"); "" for none.
HUBSPOT_TIER_PROPERTY = os.environ.get("CONCILIA_HUBSPOT_TIER_PROPERTY", "")
# The assistant: conversations started per address, messages per conversation.
CHAT_START_RATE = os.environ.get("CONCILIA_CHAT_START_RATE", "60/hour")
CHAT_MESSAGE_RATE = os.environ.get("CONCILIA_CHAT_MESSAGE_RATE", "300/hour")
# Sites allowed to embed the chat widget (its frame), besides Concilia's own.
WIDGET_ORIGINS = envlist("CONCILIA_WIDGET_ORIGINS", [])
# Technician visits bookable at the same time.
TECHNICIAN_CAPACITY = envint("CONCILIA_TECHNICIAN_CAPACITY", 2)
