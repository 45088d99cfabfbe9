"""Staff sign-in: Argon2 hashes, lock-out after failures, two-factor codes and the idle timeout.

Ana is an agent of Customer care: two-factor sign-in is her choice. Olga administers the site:
she must use it. Mallory guesses passwords from one address.
"""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.hashers import make_password
from django.test import Client
from django_otp.oath import TOTP

from concilia.accounts.models import AuthenticatorApp, RecoveryCode, User

PASSWORD = "a long passphrase for staff"
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."


@pytest.fixture(autouse=True)
def administrators_need_two_factors(settings):
    settings.TWO_FACTOR_REQUIRED = "administrators"


@pytest.fixture
def agent(ana):
    ana.set_password(PASSWORD)
    ana.save()
    return ana


@pytest.fixture
def olga(db):
    return User.objects.create_superuser("olga", "olga@company.test", PASSWORD, first_name="Olga")


class Clock:
    """time.time() for the whole process (cache expiry, TOTP codes, idle sessions), standing
    still at the start of a 30-second TOTP step until the test moves it."""

    def __init__(self, monkeypatch):
        self.now = float(int(time.time()) // 30 * 30 + 1)
        monkeypatch.setattr(time, "time", lambda: self.now)

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def sign_in(
    client: Client, username: str, password: str = PASSWORD, area: str = "helpdesk", **extra
):
    page, next_url = {
        "helpdesk": ("/helpdesk/login/", "/helpdesk/"),
        "admin": ("/admin/login/", "/admin/"),
    }[area]
    return client.post(
        f"{page}?next={next_url}",
        {"username": username, "password": password, "next": next_url},
        **EN,
        **extra,
    )


def code_for(readable_key: str) -> str:
    secret = readable_key.replace(" ", "")
    totp = TOTP(b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time()  # the app's clock is the test's
    return f"{totp.token():06d}"


def set_up_two_factor(client: Client, next_url: str = "/helpdesk/") -> tuple[str, list[str]]:
    """Scan (read) the key on the set-up page, type the app's code; the key and recovery codes."""
    page = client.get(f"/accounts/two-factor/setup/?next={next_url}", **EN)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml' in html  # the QR code
    key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', html).group(1)
    uri = re.search(r'id="totp-uri">([^<]+)<', html).group(1)
    assert uri.startswith("otpauth://totp/Concilia%3A") and "secret=" in uri
    assert "no-store" in page["Cache-Control"]
    done = client.post(
        "/accounts/two-factor/setup/", {"code": code_for(key), "next": next_url}, **EN
    )
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", done.content.decode())
    return key, codes


# -- passwords ---------------------------------------------------------------------------------


def test_new_passwords_are_hashed_with_argon2id(agent):
    assert agent.password.startswith("argon2$argon2id$")


def test_an_older_hash_is_upgraded_to_argon2_when_its_owner_signs_in(client, agent):
    User.objects.filter(pk=agent.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256")
    )

    response = sign_in(client, "ana")

    assert response.status_code == 302 and response["Location"] == "/helpdesk/"
    agent.refresh_from_db()
    assert agent.password.startswith("argon2$argon2id$")
    assert agent.check_password(PASSWORD)


# -- lock-out ----------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_user_name_for_fifteen_minutes(client, agent, clock):
    for _attempt in range(4):
        response = sign_in(client, "ana", "wrong guess")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    fifth = sign_in(client, "ana", "wrong guess")

    assert LOCKED in fifth.content.decode()
    # Even the right password is refused while locked, without being checked
    refused = sign_in(client, "ana")
    assert refused.status_code == 200 and LOCKED in refused.content.decode()
    assert "_auth_user_id" not in client.session
    clock.advance(14)
    assert "Try again in 1 minute." in sign_in(client, "ana").content.decode()
    clock.advance(1.5)
    assert sign_in(client, "ana")["Location"] == "/helpdesk/"


def test_failures_at_the_admin_and_the_helpdesk_count_together(client, agent):
    for _ in range(3):
        sign_in(client, "ana", "wrong", area="admin")
    sign_in(client, "ana", "wrong")

    locked = sign_in(client, "ANA ", "wrong", area="admin")

    assert LOCKED in locked.content.decode()
    assert LOCKED in sign_in(client, "ana").content.decode()


def test_a_successful_sign_in_forgets_the_earlier_failures(client, agent):
    for _ in range(4):
        sign_in(client, "ana", "wrong")
    assert sign_in(client, "ana").status_code == 302
    client.logout()

    for _ in range(4):
        sign_in(client, "ana", "wrong")

    assert sign_in(client, "ana").status_code == 302


def test_many_failures_from_one_address_lock_that_address_only(client, agent, settings):
    mallory = {"REMOTE_ADDR": "203.0.113.66"}
    for number in range(settings.LOGIN_FAILURES_PER_ADDRESS):
        sign_in(client, f"user{number}", "guess", **mallory)

    # Ana's name is not locked, but Mallory's address is: even a right password fails from there
    assert LOCKED in sign_in(client, "ana", **mallory).content.decode()
    assert sign_in(Client(), "ana", REMOTE_ADDR="198.51.100.7").status_code == 302


# -- two-factor sign-in ----------------------------------------------------------------------


def test_an_administrator_must_set_up_two_factor_sign_in_before_the_admin_opens(
    client, olga, clock
):
    # Given Olga gave her password
    assert sign_in(client, "olga", area="admin")["Location"] == "/admin/"

    # Then the admin and the helpdesk send her to set up a second factor
    for page in ("/admin/", "/admin/accounts/user/", "/helpdesk/"):
        response = client.get(page, **EN)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/two-factor/setup/?next=")
    # and other pages treat her as anonymous
    assert not client.get("/", **EN).wsgi_request.user.is_authenticated

    # When she types a wrong code, she is told; the right one turns it on and shows her codes
    wrong = client.post("/accounts/two-factor/setup/", {"code": "123 456"}, **EN)
    assert "That code does not match." in wrong.content.decode()
    key, codes = set_up_two_factor(client, next_url="/admin/")
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/admin/", **EN).status_code == 200
    olga.refresh_from_db()
    assert olga.two_factor_enabled
    assert LogEntry.objects.get(object_id=str(olga.pk)).change_message == (
        "Two-factor sign-in turned on."
    )

    # Next time: password, then the app's code (not the one used to set it up)
    client.logout()
    assert sign_in(client, "olga", area="admin")["Location"] == "/admin/"
    step = client.get("/admin/", **EN)
    assert step["Location"] == "/accounts/two-factor/verify/?next=%2Fadmin%2F"
    replay = client.post(
        "/accounts/two-factor/verify/", {"code": code_for(key), "next": "/admin/"}, **EN
    )
    assert "That code is not valid." in replay.content.decode()
    clock.advance(0.5)
    AuthenticatorApp.objects.update(throttling_failure_count=0)  # the wrong try's wait has passed
    verified = client.post(
        "/accounts/two-factor/verify/", {"code": code_for(key), "next": "/admin/"}, **EN
    )
    assert verified["Location"] == "/admin/"
    assert client.get("/admin/", **EN).status_code == 200


def test_a_recovery_code_signs_in_once(client, olga):
    sign_in(client, "olga", area="admin")
    _key, codes = set_up_two_factor(client, next_url="/admin/")
    client.logout()

    sign_in(client, "olga", area="admin")
    used = client.post(
        "/accounts/two-factor/verify/", {"code": codes[3].upper(), "next": "/admin/"}, **EN
    )

    assert used["Location"] == "/admin/"
    page = client.get("/admin/", **EN).content.decode()
    assert "You signed in with a recovery code; 9 are left." in page
    client.logout()
    sign_in(client, "olga", area="admin")
    again = client.post("/accounts/two-factor/verify/", {"code": codes[3], "next": "/admin/"}, **EN)
    assert again.status_code == 200 and "That code is not valid." in again.content.decode()
    assert RecoveryCode.objects.filter(device__user=olga).count() == 9


def test_wrong_codes_count_towards_the_lock_out_and_sign_the_person_out(client, olga, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    sign_in(client, "olga", area="admin")
    set_up_two_factor(client, next_url="/admin/")
    client.logout()
    sign_in(client, "olga", area="admin")

    for _ in range(4):
        response = client.post("/accounts/two-factor/verify/", {"code": "000000"}, **EN)
        assert "That code is not valid." in response.content.decode()
    fifth = client.post("/accounts/two-factor/verify/", {"code": "000000", "next": "/admin/"}, **EN)

    assert fifth["Location"] == "/admin/login/"
    assert "_auth_user_id" not in client.session
    assert LOCKED in client.get("/admin/login/", **EN).content.decode()
    assert LOCKED in sign_in(client, "olga", area="admin").content.decode()


def test_an_agent_may_turn_two_factor_sign_in_on_and_off(client, agent, clock):
    # Ana signs in with her password alone: two factors are her choice
    assert sign_in(client, "ana")["Location"] == "/helpdesk/"
    assert client.get("/helpdesk/", **EN).status_code == 200
    overview = client.get("/accounts/two-factor/", **EN).content.decode()
    assert "You sign in with your password alone." in overview

    key, _codes = set_up_two_factor(client)
    assert (
        "You have 10 recovery codes left."
        in client.get("/accounts/two-factor/", **EN).content.decode()
    )
    client.logout()
    sign_in(client, "ana")
    assert client.get("/helpdesk/", **EN)["Location"].startswith("/accounts/two-factor/verify/")
    clock.advance(0.5)
    client.post("/accounts/two-factor/verify/", {"code": code_for(key)}, **EN)
    assert client.get("/helpdesk/", **EN).status_code == 200

    # Turning it off needs a current code
    refused = client.post("/accounts/two-factor/turn-off/", {"code": "999999"}, follow=True, **EN)
    assert "That code is not valid: two-factor sign-in is still on." in refused.content.decode()
    clock.advance(0.5)
    AuthenticatorApp.objects.update(throttling_failure_count=0)
    done = client.post("/accounts/two-factor/turn-off/", {"code": code_for(key)}, follow=True, **EN)
    assert "Two-factor sign-in is off." in done.content.decode()
    agent.refresh_from_db()
    assert not agent.two_factor_enabled and not AuthenticatorApp.objects.filter(user=agent).exists()


def test_an_administrator_cannot_turn_it_off_but_can_reset_a_lost_phone(client, olga, agent):
    ana_client = Client()
    sign_in(ana_client, "ana")
    set_up_two_factor(ana_client)
    sign_in(client, "olga", area="admin")
    set_up_two_factor(client, next_url="/admin/")

    kept = client.post("/accounts/two-factor/turn-off/", {"code": "000000"}, follow=True, **EN)
    assert (
        "Your account must use two-factor sign-in: it cannot be turned off."
        in kept.content.decode()
    )

    # Ana lost her phone: Olga resets it from the admin
    response = client.post(
        "/admin/accounts/user/",
        {"action": "reset_two_factor", "_selected_action": [agent.pk]},
        follow=True,
        **EN,
    )
    assert "Two-factor sign-in reset for 1 person." in response.content.decode()
    agent.refresh_from_db()
    assert not agent.two_factor_enabled
    assert LogEntry.objects.filter(object_id=str(agent.pk), user=olga).get().change_message == (
        "Two-factor sign-in reset by an administrator."
    )
    fresh = Client()
    sign_in(fresh, "ana")
    assert fresh.get("/helpdesk/", **EN).status_code == 200


def test_every_staff_member_can_be_required_to_use_two_factors(client, agent, settings):
    settings.TWO_FACTOR_REQUIRED = "staff"
    sign_in(client, "ana")

    response = client.get("/helpdesk/", **EN)

    assert response["Location"].startswith("/accounts/two-factor/setup/")
    page = client.get(response["Location"], **EN).content.decode()
    assert "Your account must use two-factor sign-in." in page


def test_signing_out_is_possible_half_way(client, olga):
    sign_in(client, "olga", area="admin")

    response = client.post("/accounts/sign-out/", {"next": "/admin/login/"})

    assert response["Location"] == "/admin/login/"
    assert "_auth_user_id" not in client.session


# -- idle sessions -------------------------------------------------------------------------


def test_staff_are_signed_out_after_an_hour_without_activity(client, agent, clock):
    sign_in(client, "ana")
    assert client.get("/helpdesk/", **EN).status_code == 200
    clock.advance(50)
    assert client.get("/helpdesk/", **EN).status_code == 200  # still active: the clock restarts
    clock.advance(50)
    assert client.get("/helpdesk/", **EN).status_code == 200

    clock.advance(61)
    response = client.get("/helpdesk/", **EN)

    assert response.status_code == 302 and response["Location"].startswith("/helpdesk/login/")
    page = client.get(response["Location"], **EN).content.decode()
    assert "You were signed out after 60 minutes without activity." in page
    assert "_auth_user_id" not in client.session
