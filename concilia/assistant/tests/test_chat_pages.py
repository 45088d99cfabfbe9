"""The chat pages: /chat/ and the widget's frame /chat/embed/ in both languages, with their scripts
and no inline ones, and framing allowed only for the frame page and only to the configured sites."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"


def inline_scripts(html: str) -> list[str]:
    """Scripts the CSP would refuse: any <script> without src that is not a JSON data block."""
    found = []
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        if "src=" in attributes or 'type="application/json"' in attributes:
            continue
        found.append(body)
    return found


def strings(html: str) -> dict[str, str]:
    block = re.search(
        r'<script id="chat-strings" type="application/json">(.*?)</script>', html, re.S
    )
    assert block is not None
    return json.loads(block.group(1))


def test_the_chat_page_opens_in_spanish_by_default(client):
    response = client.get("/chat/", headers={"accept-language": "es"})

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="es">' in html
    assert "Asistente de reclamaciones" in html or "Complaints assistant" in html
    assert 'data-language="es"' in html
    assert 'data-channel="page"' in html
    assert 'src="/static/concilia/chat.js"' in html
    assert 'href="/static/concilia/chat.css"' in html
    assert 'role="log"' in html and 'aria-live="polite"' in html
    assert '<label for="chat-input"' in html
    assert inline_scripts(html) == []
    assert strings(html)["customer"] in ("Tú", "You")


def test_the_chat_page_follows_the_browser_and_the_language_switch(client):
    assert (
        'data-language="en"'
        in client.get("/chat/", headers={"accept-language": "en"}).content.decode()
    )

    client.post("/i18n/setlang/", {"language": "es", "next": "/chat/"})
    html = client.get("/chat/", headers={"accept-language": "en"}).content.decode()
    assert 'data-language="es"' in html


def test_lang_in_the_address_chooses_the_language_and_comes_back_to_the_plain_address(client):
    response = client.get("/chat/?lang=en", headers={"accept-language": "es"})

    assert response.status_code == 302
    assert response["Location"] == "/chat/"
    assert response.cookies["concilia_language"].value == "en"
    html = client.get(response["Location"], headers={"accept-language": "es"}).content.decode()
    assert '<html lang="en">' in html
    assert 'data-language="en"' in html
    assert strings(html)["customer"] == "You"
    # An unknown language is ignored rather than trusted.
    assert client.get("/chat/?lang=xx").status_code == 200


@pytest.mark.parametrize(("lang", "title"), [("es", "es"), ("en", "en")])
def test_the_frame_page_renders_in_the_language_the_widget_asks(client, lang, title):
    response = client.get(f"/chat/embed/?lang={lang}", headers={"accept-language": "fr"})

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{title}">' in html
    assert f'data-language="{lang}"' in html
    assert 'data-channel="widget"' in html
    assert 'src="/static/concilia/chat.js"' in html
    assert 'class="chat-embed"' in html
    assert 'class="site"' not in html  # no site header or footer in the frame
    assert inline_scripts(html) == []


def test_only_the_frame_page_may_be_framed_and_only_by_the_configured_sites(client, settings):
    settings.WIDGET_ORIGINS = [SHOP, "https://other.example/", "javascript:alert(1)", "not a url"]

    embed = client.get("/chat/embed/")

    policy = embed["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://shop.example https://other.example;" in policy + ";"
    assert "javascript" not in policy and "not a url" not in policy
    assert "script-src 'self'" in policy
    assert "X-Frame-Options" not in embed
    for path in ("/chat/", "/", "/complaints/new", "/track"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], path
        assert SHOP not in response["Content-Security-Policy"], path


def test_without_configured_sites_the_frame_page_may_be_framed_only_by_concilia(client, settings):
    settings.WIDGET_ORIGINS = []

    policy = client.get("/chat/embed/")["Content-Security-Policy"]

    assert "frame-ancestors 'self'" in policy.split("; ")  # django-csp orders directives freely


def test_the_widget_script_is_served(client):
    from django.contrib.staticfiles import finders

    for name in ("concilia/widget.js", "concilia/chat.js", "concilia/chat.css"):
        assert finders.find(name), name
    source = Path(finders.find("concilia/widget.js")).read_text(encoding="utf-8")
    assert "innerHTML" not in source
    assert "/chat/embed/" in source
    chat = Path(finders.find("concilia/chat.js")).read_text(encoding="utf-8")
    assert "innerHTML" not in chat


@pytest.mark.parametrize("body", ['"k"', "5", "[]", "null"])
def test_starting_a_conversation_with_a_body_that_is_not_an_object_is_refused(client, body):
    response = client.post(
        "/api/v1/conversations",
        data=body,
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == "Send a JSON object, or no body."


def test_starting_a_conversation_without_a_body_or_with_an_object_works(client):
    empty = client.post("/api/v1/conversations", data="", content_type="application/json")
    assert empty.status_code == 201
    started = client.post(
        "/api/v1/conversations", data={"language": "en"}, content_type="application/json"
    )
    assert started.status_code == 201
