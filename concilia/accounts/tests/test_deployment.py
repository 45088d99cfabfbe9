"""Production settings and the headers every page sends: `check --deploy` is clean, pages can
neither be framed (except the chat widget's) nor run inline code, and forms need CSRF tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[3]
SHOP = "https://shop.example"


def run_concilia(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    """A `concilia` command in a fresh process, with only the given CONCILIA_* variables (and
    without what the browser tests set for themselves)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONCILIA_") and k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "concilia.cli", *args],
        env={**clean, "CONCILIA_HOME": str(tmp_path / "home"), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "CONCILIA_ENV": "production",
    "CONCILIA_ALLOWED_HOSTS": "complaints.example.com",
    "CONCILIA_NUM_PROXIES": "1",
}
SHOW_SETTINGS = (
    "from django.conf import settings as s; import json; print(json.dumps({k: getattr(s, k, None)"
    " for k in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT',"
    " 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD',"
    " 'SECURE_PROXY_SSL_HEADER', 'DEBUG')}))"
)


def test_check_deploy_is_clean_in_production(tmp_path):
    done = run_concilia(tmp_path, ["check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_production_turns_on_https_only_settings_and_each_can_be_set_alone(tmp_path):
    production = json.loads(
        run_concilia(tmp_path, ["shell", "-c", SHOW_SETTINGS], **PRODUCTION).stdout.splitlines()[-1]
    )
    assert production == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "DEBUG": False,
    }
    tuned = run_concilia(
        tmp_path,
        ["shell", "-c", SHOW_SETTINGS],
        **PRODUCTION,
        CONCILIA_HSTS_PRELOAD="0",
        CONCILIA_HSTS_SECONDS="600",
        CONCILIA_PROXY_SSL_HEADER="none",
    )
    assert json.loads(tuned.stdout.splitlines()[-1]) == {
        **production,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_HSTS_SECONDS": 600,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_check_deploy_names_what_development_settings_lack(tmp_path):
    done = run_concilia(
        tmp_path,
        ["check", "--deploy"],
        CONCILIA_ALLOWED_HOSTS="complaints.example.com",
        CONCILIA_TWO_FACTOR_REQUIRED="none",
    )

    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" in done.stderr + done.stdout, check
    assert "accounts.W001" in done.stderr + done.stdout


def test_a_wrong_environment_name_stops_the_start(tmp_path):
    done = run_concilia(tmp_path, ["check"], CONCILIA_ENV="prod")

    assert done.returncode != 0
    assert "CONCILIA_ENV must be 'development' or 'production'." in done.stderr


# -- headers ------------------------------------------------------------------------------


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/", "/complaints/new", "/chat/", "/track", "/helpdesk/login/", "/admin/login/"]
)
def test_pages_allow_no_inline_code_and_no_framing(client, path):
    response = client.get(path)

    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_only_the_chat_widget_frame_may_be_framed_by_the_shops_site(client, settings):
    settings.WIDGET_ORIGINS = [SHOP]

    embed = client.get("/chat/embed/")

    assert directives(embed)["frame-ancestors"] == ["'self'", SHOP]
    assert "X-Frame-Options" not in embed
    assert directives(embed)["script-src"] == ["'self'"]


@pytest.mark.django_db
def test_behind_the_proxy_production_redirects_to_https_and_sends_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = True

    plain = client.get("/complaints/new")
    secure = client.get("/complaints/new", headers={"X-Forwarded-Proto": "https"})

    assert plain.status_code == 301 and plain["Location"] == "https://testserver/complaints/new"
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert secure.cookies["csrftoken"]["secure"] is True


def test_the_one_inline_style_allowed_is_djangos_change_list_block():
    import django

    template = Path(django.__file__).parent / "contrib/admin/templates/admin/change_list.html"
    block = re.search(r"<style>(.*?)</style>", template.read_text(), re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()

    allowed = django_settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"]
    assert f"'sha256-{digest}'" in allowed
    assert "'unsafe-inline'" not in allowed


def test_no_template_has_inline_scripts_styles_or_event_handlers():
    offenders = []
    for template in (ROOT / "concilia").rglob("templates/**/*.html"):
        if "/email/" in template.as_posix():
            continue  # emails are read in mail clients, not under our CSP
        text = template.read_text(encoding="utf-8")
        inline_script = re.search(
            r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", text
        )
        inline_style = re.search(r"<style(?![^>]*nonce=)[^>]*>|\sstyle=\"", text)
        handler = re.search(r"\son[a-z]+=\"", text)
        if inline_script or inline_style or handler:
            offenders.append(template.relative_to(ROOT).as_posix())
    assert offenders == []


# -- CSRF ---------------------------------------------------------------------------------

# Machine endpoints that authenticate each call themselves and use no session.
CSRF_EXEMPT = {
    "concilia.integrations.mail.views.inbound",  # the mailbox's inbound secret
    "concilia.integrations.telegram.views.webhook",  # Telegram's secret-token header
}


def views_of(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from views_of(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def test_only_machine_webhooks_and_the_token_api_skip_csrf():
    exempt = {
        f"{view.__module__}.{view.__name__}"
        for route, view in views_of(get_resolver())
        if getattr(view, "csrf_exempt", False) and not route.startswith("api/v1/")
    }

    assert exempt == CSRF_EXEMPT


@pytest.mark.django_db
def test_session_forms_refuse_a_post_without_the_csrf_token(ana):
    browser = Client(enforce_csrf_checks=True)

    assert (
        browser.post("/helpdesk/login/", {"username": "ana", "password": "pw"}).status_code == 403
    )
    assert browser.post("/admin/login/", {"username": "ana", "password": "pw"}).status_code == 403
    browser.force_login(ana)
    assert browser.post("/accounts/two-factor/recovery-codes/").status_code == 403
    assert browser.post("/accounts/sign-out/").status_code == 403
