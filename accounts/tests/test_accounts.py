"""Accounts through real HTTP requests: sign up, log in, profile, log out, passwords, API keys, lockout."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, User
from conversations.models import DailyUsage

pytestmark = pytest.mark.django_db


def test_sign_up_log_in_profile_log_out(client, password):
    response = client.post(
        reverse("signup"),
        {"username": "carol", "email": "carol@example.com", "password1": password, "password2": password},
    )
    assert response.status_code == 302 and response["Location"] == reverse("conversations:home")
    assert User.objects.get(username="carol").email == "carol@example.com"
    assert client.get("/").status_code == 200  # signed up = logged in

    client.post(reverse("logout"))
    assert client.get("/").status_code == 302

    response = client.post(reverse("login"), {"username": "carol", "password": password})
    assert response.status_code == 302 and response["Location"] == reverse("conversations:home")

    profile = client.get(reverse("profile"))
    assert profile.status_code == 200
    assert "carol@example.com" in profile.content.decode()

    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("profile")).status_code == 302


def test_log_out_needs_a_post(authenticated_client):
    assert authenticated_client.get(reverse("logout")).status_code == 405
    assert authenticated_client.get(reverse("profile")).status_code == 200


def test_a_weak_password_is_rejected_with_the_validators_message(client):
    response = client.post(
        reverse("signup"),
        {"username": "dave", "email": "dave@example.com", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "This password is too short. It must contain at least 8 characters." in html
    assert "This password is entirely numeric." in html
    assert not User.objects.filter(username="dave").exists()


def test_a_common_password_is_rejected(client):
    response = client.post(
        reverse("signup"),
        {"username": "erin", "email": "erin@example.com", "password1": "password123", "password2": "password123"},
    )
    assert "This password is too common." in response.content.decode()


def test_sign_up_requires_an_email_and_a_free_username(client, user, password):
    response = client.post(
        reverse("signup"), {"username": "alice", "email": "", "password1": password, "password2": password}
    )
    html = response.content.decode()
    assert "A user with that username already exists." in html
    assert "This field is required." in html


def test_wrong_password_shows_an_error(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong-password"})
    assert response.status_code == 200
    assert "Please enter a correct username and password." in response.content.decode()


def test_repeated_failures_show_the_lockout_page(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "alice", "password": "wrong-password"})
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong-password"})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_logged_in_users_skip_the_login_and_signup_pages(authenticated_client):
    assert authenticated_client.get(reverse("login"))["Location"] == reverse("conversations:home")
    assert authenticated_client.get(reverse("signup"))["Location"] == reverse("conversations:home")


def test_password_change(authenticated_client, password):
    response = authenticated_client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": "n3w-Better-pass!", "new_password2": "n3w-Better-pass!"},
    )
    assert response["Location"] == reverse("password_change_done")
    assert authenticated_client.get(reverse("password_change_done")).status_code == 200
    assert User.objects.get(username="alice").check_password("n3w-Better-pass!")


def test_password_reset_by_email(client, user):
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "\n" not in message.subject
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "Reset-passw0rd!", "new_password2": "Reset-passw0rd!"}
    )
    assert response["Location"] == reverse("password_reset_complete")
    assert User.objects.get(username="alice").check_password("Reset-passw0rd!")
    assert "Link expired" in client.get(link, follow=True).content.decode()


def test_api_key_is_shown_once_then_only_its_prefix(authenticated_client, user):
    response = authenticated_client.post(reverse("api_key_create"), {"name": "laptop"}, follow=True)
    html = response.content.decode()
    raw = re.search(r'id="new-key-value">([^<]+)<', html).group(1)
    key = ApiKey.objects.get(user=user)
    assert raw.startswith(f"cs_{key.prefix}_") and key.name == "laptop"
    again = authenticated_client.get(reverse("profile")).content.decode()
    assert raw not in again
    assert f"cs_{key.prefix}_…" in again


def test_api_key_revoke_is_owner_only(authenticated_client, user, other_user):
    mine, _ = ApiKey.generate(user=user, name="mine")
    theirs, _ = ApiKey.generate(user=other_user, name="theirs")
    assert authenticated_client.post(reverse("api_key_revoke", args=[theirs.pk])).status_code == 404
    assert authenticated_client.get(reverse("api_key_revoke", args=[mine.pk])).status_code == 405
    authenticated_client.post(reverse("api_key_revoke", args=[mine.pk]))
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None
    html = authenticated_client.get(reverse("profile")).content.decode()
    assert "Revoked" in html and "theirs" not in html


def test_profile_shows_todays_usage_and_quota(authenticated_client, user, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 1000
    DailyUsage.objects.create(user=user, day=timezone.localdate(), prompt_tokens=100, completion_tokens=50, answers=1)
    html = authenticated_client.get(reverse("profile")).content.decode()
    assert '<strong class="usage-number">150</strong>' in html
    assert "850 of 1000 tokens left today" in html


def test_korean_ui(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ko")
    html = response.content.decode()
    assert '<html lang="ko">' in html
    assert ">chatsite</span>" in html and "로그인" in html  # the product name is not translated


def test_language_switcher_sets_the_language(client):
    response = client.post("/i18n/setlang/", {"language": "ko", "next": reverse("login")})
    assert response.status_code == 302
    assert "로그인" in client.get(reverse("login")).content.decode()


@pytest.mark.django_db
def test_sign_up_is_throttled_per_address_so_username_probing_is_slow(client, make_user, settings):
    settings.SIGNUP_ATTEMPTS_PER_HOUR = 5
    make_user("taken")
    probes = [
        client.post("/accounts/signup/", {"username": "taken", "email": "x@example.com",
                                          "password1": "x", "password2": "y"})
        for _ in range(20)
    ]
    assert [p.status_code for p in probes[:5]] == [200] * 5  # the form with its errors
    assert {p.status_code for p in probes[5:]} == {429}
    assert "Too many sign-up attempts" in probes[-1].content.decode()
    assert "already exists" not in probes[-1].content.decode()  # a refused probe learns nothing
    other = client.post("/accounts/signup/", {"username": "fresh"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200  # another address is not affected
