"""Sign-up modes: open, invite (an admin's link), domain allow-list and admin approval, through the sign-up form,
the log-in form, the admin and the API."""

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, Invite, User

pytestmark = pytest.mark.django_db

PASSWORD = "a-Strong-passw0rd!"


def sign_up(client, username, email=None, invite=None):
    data = {"username": username, "email": email or f"{username}@example.com", "password1": PASSWORD,
            "password2": PASSWORD}
    if invite is not None:
        data["invite"] = invite
    return client.post(reverse("signup"), data)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_open_mode_signs_up_and_in(client):
    response = sign_up(client, "ada")
    assert response.status_code == 302
    assert signed_in(client)
    user = User.objects.get(username="ada")
    assert user.is_active and not user.approval_pending


class TestInviteMode:
    @pytest.fixture(autouse=True)
    def invite_mode(self, settings):
        settings.SIGNUP_MODE = "invite"

    def test_without_an_invite_the_page_says_so_and_a_post_is_refused(self, client):
        page = client.get(reverse("signup"))
        assert "by invitation only" in page.content.decode()
        assert b'name="password1"' not in page.content

        response = sign_up(client, "ada")
        assert response.status_code == 403
        assert not User.objects.exists()

    def test_a_one_time_invite_signs_up_one_account(self, client):
        invite = Invite.objects.create()
        page = client.get(invite.get_absolute_url())
        assert f'value="{invite.token}"' in page.content.decode()

        assert sign_up(client, "ada", invite=invite.token).status_code == 302
        assert User.objects.get(username="ada").signup_invite == invite
        invite.refresh_from_db()
        assert invite.uses == 1 and not invite.is_usable

        response = sign_up(Client(), "bob", invite=invite.token)
        assert response.status_code == 403
        assert "expired or has been used up" in response.content.decode()
        assert not User.objects.filter(username="bob").exists()

    def test_a_limited_invite_counts_its_uses(self):
        invite = Invite.objects.create(max_uses=2)
        assert sign_up(Client(), "ada", invite=invite.token).status_code == 302
        assert sign_up(Client(), "bob", invite=invite.token).status_code == 302
        assert sign_up(Client(), "cy", invite=invite.token).status_code == 403
        assert sorted(User.objects.values_list("username", flat=True)) == ["ada", "bob"]

    def test_an_expired_invite_is_refused(self, client):
        invite = Invite.objects.create(expires_at=timezone.now() - timedelta(minutes=1))
        assert "expired or has been used up" in client.get(invite.get_absolute_url()).content.decode()
        assert sign_up(client, "ada", invite=invite.token).status_code == 403
        assert not User.objects.exists()

    def test_an_invite_cannot_be_used_beyond_its_uses_even_in_the_database(self):
        invite = Invite.objects.create(max_uses=1)
        with pytest.raises(IntegrityError):
            Invite.objects.filter(pk=invite.pk).update(uses=2)

    def test_the_admin_cannot_lower_an_invites_uses_below_those_it_had(self, superuser_client):
        invite = Invite.objects.create(max_uses=3)
        Invite.objects.filter(pk=invite.pk).update(uses=2)
        response = superuser_client.post(reverse("admin:accounts_invite_change", args=[invite.pk]), {"max_uses": 1})
        assert response.status_code == 200
        assert "An invite cannot allow fewer uses than it has already had (2)." in response.content.decode()
        invite.refresh_from_db()
        assert invite.max_uses == 3

    def test_the_admin_makes_an_invite_and_shows_its_absolute_link(self, superuser_client):
        response = superuser_client.post(reverse("admin:accounts_invite_add"), {"note": "new lab", "max_uses": 3})
        assert response.status_code == 302
        invite = Invite.objects.get()
        assert invite.created_by.username == "root" and invite.max_uses == 3
        page = superuser_client.get(reverse("admin:accounts_invite_changelist")).content.decode()
        assert f"http://testserver/accounts/signup/?invite={invite.token}" in page


class TestDomainMode:
    @pytest.fixture(autouse=True)
    def domain_mode(self, settings):
        settings.SIGNUP_MODE = "domain"
        settings.SIGNUP_ALLOWED_DOMAINS = ["example.com", "lab.example.org"]

    def test_another_domain_is_refused_on_the_email_field(self, client):
        response = sign_up(client, "eve", "eve@elsewhere.org")
        assert response.status_code == 200
        assert "Sign-up is limited to e-mail addresses at example.com, lab.example.org." in response.content.decode()
        assert not User.objects.exists()

    def test_a_subdomain_of_an_allowed_domain_is_not_allowed(self, client):
        sign_up(client, "eve", "eve@evil.example.com")
        assert not User.objects.exists()

    def test_an_allowed_domain_signs_up_in_any_case(self, client):
        assert sign_up(client, "ada", "Ada@Lab.Example.org").status_code == 302
        assert signed_in(client)


class TestApprovalMode:
    @pytest.fixture(autouse=True)
    def approval_mode(self, settings):
        settings.SIGNUP_MODE = "approval"

    def test_a_new_account_waits_on_a_clear_page_and_is_not_signed_in(self, client):
        response = sign_up(client, "ada")
        assert response.status_code == 302 and response["Location"] == reverse("signup_pending")
        assert not signed_in(client)
        page = client.get(reverse("signup_pending")).content.decode()
        assert "Your account is waiting for approval" in page and "ada" in page
        user = User.objects.get(username="ada")
        assert user.approval_pending and not user.is_active

    def test_logging_in_before_approval_leads_to_the_pending_page(self, client):
        sign_up(client, "ada")
        response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
        assert response.status_code == 302 and response["Location"] == reverse("signup_pending")
        assert not signed_in(client)

    def test_a_wrong_password_of_a_pending_account_is_just_a_wrong_password(self, client):
        sign_up(client, "ada")
        response = client.post(reverse("login"), {"username": "ada", "password": "not-it"})
        assert response.status_code == 200
        assert "waiting" not in response.content.decode()

    def test_a_pending_account_cannot_use_the_api_or_its_keys(self, client):
        sign_up(client, "ada")
        user = User.objects.get(username="ada")
        _key, raw = ApiKey.generate(user=user, name="made by staff")
        assert client.get("/api/v1/keys/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
        assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
        forced = Client()
        forced.force_login(user)  # even a session made behind the form's back is not a signed-in user
        assert forced.get(reverse("conversations:home")).status_code == 302
        assert forced.get("/api/v1/keys/").status_code in (401, 403)

    def test_staff_approve_in_the_admin_and_then_the_account_logs_in(self, client, superuser_client):
        sign_up(client, "ada")
        user = User.objects.get(username="ada")
        changelist = superuser_client.get(reverse("admin:accounts_user_changelist"), {"approval_pending__exact": "1"})
        assert list(changelist.context["cl"].result_list) == [user]

        response = superuser_client.post(
            reverse("admin:accounts_user_changelist"), {"action": "approve_selected", "_selected_action": [user.pk]}
        )
        assert response.status_code == 302
        user.refresh_from_db()
        assert user.is_active and not user.approval_pending
        assert client.post(reverse("login"), {"username": "ada", "password": PASSWORD}).status_code == 302
        assert signed_in(client)

    def test_a_pending_account_cannot_be_made_active_without_approval(self):
        user = User.objects.create_user("ada", is_active=False, approval_pending=True)
        user.is_active = True
        with pytest.raises(IntegrityError):
            user.save()


def test_the_settings_are_documented():
    from django.conf import settings as django_settings

    readme = (django_settings.BASE_DIR / "README.md").read_text()
    example = (django_settings.BASE_DIR / ".env.example").read_text()
    for name in ("SIGNUP_MODE", "SIGNUP_ALLOWED_DOMAINS", "OIDC_RP_CLIENT_ID", "OIDC_OP_JWKS_ENDPOINT",
                 "OIDC_GROUPS_CLAIM", "OIDC_PROVIDER_NAME", "SSO_ONLY"):
        assert name in readme and name in example, name


@pytest.mark.parametrize(("env", "message"), [
    ({"SIGNUP_MODE": "anyone"}, "SIGNUP_MODE must be open, invite, domain or approval."),
    ({"SIGNUP_MODE": "domain"}, "SIGNUP_MODE=domain needs SIGNUP_ALLOWED_DOMAINS"),
    ({"SSO_ONLY": "1"}, "SSO_ONLY needs single sign-on configured"),
    ({"OIDC_RP_CLIENT_ID": "chatsite"}, "OIDC_RP_CLIENT_ID is set: set OIDC_OP_AUTHORIZATION_ENDPOINT"),
])
def test_a_wrong_sign_up_or_sso_setting_stops_the_start(env, message):
    from chatsite.tests.test_settings_and_health import run_python

    result = run_python("import django; django.setup()", SECRET_KEY="x" * 50, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
