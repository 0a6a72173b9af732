"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider, a second Django process): accounts
made and found, groups from the claim, linking by verified e-mail only, SSO_ONLY, and the sign-up modes."""

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey, Invite, OidcIdentity, User
from chatsite.task_worker import run_queued_tasks
from tests.oidc_provider.flow import sign_in

pytestmark = pytest.mark.django_db

PASSWORD = "idp-Passw0rd!"


def person(email, *, verified=True, groups=None, password=PASSWORD):
    entry = {"password": password, "email": email, "email_verified": verified}
    if groups is not None:
        entry["groups"] = groups
    return entry


def signed_in_user(client):
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def messages_of(response) -> str:
    return " ".join(str(message) for message in response.context["messages"]) if response.context else ""


def test_a_first_sign_in_creates_the_user_in_the_groups_of_the_claim(sso):
    lab, _ = Group.objects.get_or_create(name="lab")
    sso.set_people({"ada": person("ada@example.com", groups=["lab", "not-defined-here"])})
    client = Client()

    response = sign_in(client, sso, "ada", PASSWORD)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("conversations:home")
    user = signed_in_user(client)
    assert user is not None and user.username == "ada" and user.email == "ada@example.com"
    assert not user.has_usable_password()
    assert list(user.groups.all()) == [lab]  # a group the provider names but nobody made here is not created
    assert not Group.objects.filter(name="not-defined-here").exists()
    identity = OidcIdentity.objects.get(user=user)
    assert identity.issuer == f"{sso.base_url}/o"


def test_the_next_sign_in_updates_the_groups_added_and_removed(sso):
    lab = Group.objects.create(name="lab")
    admins = Group.objects.create(name="admins")
    sso.set_people({"ada": person("ada@example.com", groups=["lab"])})
    sign_in(Client(), sso, "ada", PASSWORD)
    user = User.objects.get(username="ada")
    assert set(user.groups.all()) == {lab}

    sso.set_people({"ada": person("ada@example.com", groups=["admins"])})
    client = Client()
    sign_in(client, sso, "ada", PASSWORD)

    assert signed_in_user(client) == user
    assert User.objects.count() == 1
    assert set(user.groups.all()) == {admins}


def test_a_provider_without_the_groups_claim_leaves_the_groups_alone(sso):
    lab = Group.objects.create(name="lab")
    sso.set_people({"ada": person("ada@example.com", groups=["lab"])})
    sign_in(Client(), sso, "ada", PASSWORD)
    sso.set_people({"ada": person("ada@example.com")})

    sign_in(Client(), sso, "ada", PASSWORD)

    assert list(User.objects.get(username="ada").groups.all()) == [lab]


def test_a_returning_person_is_found_by_subject_even_with_a_new_email(sso):
    sso.set_people({"ada": person("ada@example.com")})
    sign_in(Client(), sso, "ada", PASSWORD)
    sso.set_people({"ada": person("ada.lovelace@example.org", verified=False)})
    client = Client()

    sign_in(client, sso, "ada", PASSWORD)

    assert signed_in_user(client) == User.objects.get(username="ada")
    assert User.objects.count() == 1


def test_a_verified_email_links_the_existing_account(sso):
    existing = User.objects.create_user("grace", "grace@example.com", "local-Passw0rd!")
    sso.set_people({"ghopper": person("Grace@Example.com", verified=True)})
    client = Client()

    sign_in(client, sso, "ghopper", PASSWORD)

    assert signed_in_user(client) == existing
    assert OidcIdentity.objects.get().user == existing
    assert User.objects.count() == 1


def test_an_unverified_email_does_not_link_to_the_existing_account(sso):
    existing = User.objects.create_user("grace", "grace@example.com", "local-Passw0rd!")
    sso.set_people({"mallory": person("grace@example.com", verified=False)})
    client = Client()

    response = sign_in(client, sso, "mallory", PASSWORD)

    assert signed_in_user(client) is None
    assert response.request["PATH_INFO"] == reverse("login")
    assert "has not verified that address" in messages_of(response)
    assert not OidcIdentity.objects.exists()
    assert list(User.objects.all()) == [existing]


def test_the_provider_is_reached_only_through_the_outbound_allow_list(sso, settings):
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = []  # 127.0.0.1 is a private address: the wrapper refuses it
    sso.set_people({"ada": person("ada@example.com")})
    client = Client()

    response = sign_in(client, sso, "ada", PASSWORD)

    assert signed_in_user(client) is None
    assert "could not be reached" in messages_of(response)
    assert not User.objects.exists()


def test_the_login_page_offers_single_sign_on(sso):
    response = Client().get(reverse("login"))
    assert b"Continue with Test IdP" in response.content
    assert b'name="password"' in response.content


def test_without_single_sign_on_there_is_no_button_and_no_route(settings):
    settings.OIDC_RP_CLIENT_ID = ""
    client = Client()
    assert b"Continue with" not in client.get(reverse("login")).content
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback"), {"code": "x", "state": "y"}).status_code == 404


class TestSsoOnly:
    @pytest.fixture(autouse=True)
    def sso_only(self, sso, settings):
        settings.SSO_ONLY = True
        settings.AXES_FAILURE_LIMIT = 3

    def test_a_password_login_is_refused_clearly_however_often_it_is_tried(self, client):
        User.objects.create_user("grace", "grace@example.com", "local-Passw0rd!")
        for _attempt in range(5):  # past the lockout limit: still the same refusal, never the lockout page
            response = client.post(reverse("login"), {"username": "grace", "password": "local-Passw0rd!"})
            assert response.status_code == 403
            assert "Password log-in is turned off: log in with Test IdP." in response.content.decode()
        assert signed_in_user(client) is None

    def test_the_login_page_shows_only_the_provider(self, client):
        page = client.get(reverse("login")).content.decode()
        assert "Continue with Test IdP" in page
        assert 'name="password"' not in page

    def test_the_admin_login_leads_to_the_provider_and_any_other_password_check_refuses(self, client):
        User.objects.create_superuser("root", "root@example.com", "root-Passw0rd!")
        credentials = {"username": "root", "password": "root-Passw0rd!"}
        response = client.post("/admin/login/?next=/admin/accounts/", credentials)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next=/admin/accounts/"
        assert signed_in_user(client) is None
        assert authenticate(username="root", password="root-Passw0rd!") is None

    def test_staff_sign_in_through_the_provider_and_come_back_to_the_admin(self, sso):
        User.objects.create_superuser("root", "root@example.com", "root-Passw0rd!")
        sso.set_people({"root-at-idp": person("root@example.com")})
        client = Client()
        response = sign_in(client, sso, "root-at-idp", PASSWORD, start="/oidc/authenticate/?next=/admin/")
        assert response.status_code == 200 and response.request["PATH_INFO"] == "/admin/"

    def test_password_sign_up_and_reset_are_refused(self, client):
        response = client.post(reverse("signup"), {
            "username": "newbie", "email": "newbie@example.com",
            "password1": "a-Strong-passw0rd!", "password2": "a-Strong-passw0rd!",
        })
        assert response.status_code == 403
        assert "Sign-up is through Test IdP only." in response.content.decode()
        assert not User.objects.filter(username="newbie").exists()
        assert client.get(reverse("password_reset")).status_code == 403

    def test_single_sign_on_still_signs_in(self, sso):
        sso.set_people({"ada": person("ada@example.com")})
        client = Client()
        sign_in(client, sso, "ada", PASSWORD)
        assert signed_in_user(client).username == "ada"

    def test_api_keys_still_work(self, client):
        user = User.objects.create_user("grace", "grace@example.com", "local-Passw0rd!")
        _key, raw = ApiKey.generate(user=user, name="script")
        response = client.get("/api/v1/keys/", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200


class TestSignUpModesWithSingleSignOn:
    def test_approval_mode_creates_a_pending_account_that_is_not_signed_in(self, sso, settings):
        settings.SIGNUP_MODE = "approval"
        sso.set_people({"ada": person("ada@example.com")})
        client = Client()

        response = sign_in(client, sso, "ada", PASSWORD)

        assert response.request["PATH_INFO"] == reverse("signup_pending")
        assert "waiting for approval" in response.content.decode()
        user = User.objects.get(username="ada")
        assert user.approval_pending and not user.is_active
        assert signed_in_user(client) is None

        user.approve()
        sign_in(client, sso, "ada", PASSWORD)
        assert signed_in_user(client) == user

    def test_domain_mode_refuses_another_domain_and_an_unverified_address(self, sso, settings):
        settings.SIGNUP_MODE = "domain"
        settings.SIGNUP_ALLOWED_DOMAINS = ["example.com"]
        sso.set_people({
            "eve": person("eve@elsewhere.org"),
            "ann": person("ann@example.com", verified=False),
            "bob": person("bob@example.com"),
        })

        refused = sign_in(Client(), sso, "eve", PASSWORD)
        assert "limited to e-mail addresses at example.com" in messages_of(refused)
        unverified = sign_in(Client(), sso, "ann", PASSWORD)
        assert "verified" in messages_of(unverified)
        client = Client()
        sign_in(client, sso, "bob", PASSWORD)

        assert signed_in_user(client).username == "bob"
        assert list(User.objects.values_list("username", flat=True)) == ["bob"]

    def test_invite_mode_needs_an_invite_link(self, sso, settings):
        settings.SIGNUP_MODE = "invite"
        sso.set_people({"ada": person("ada@example.com"), "bob": person("bob@example.com")})
        invite = Invite.objects.create(max_uses=1)

        refused = sign_in(Client(), sso, "bob", PASSWORD)
        assert "by invitation only" in messages_of(refused)
        client = Client()
        sign_in(client, sso, "ada", PASSWORD, start=f"/oidc/authenticate/?invite={invite.token}")

        user = signed_in_user(client)
        assert user.username == "ada" and user.signup_invite == invite
        invite.refresh_from_db()
        assert invite.uses == 1
        assert not User.objects.filter(username="bob").exists()


@pytest.mark.django_db(transaction=True)  # the task worker deletes the data in transactions of its own
def test_an_account_made_by_single_sign_on_deletes_itself_with_its_username(sso):
    sso.set_people({"ada": person("ada@example.com")})
    client = Client()
    sign_in(client, sso, "ada", PASSWORD)
    profile = client.get(reverse("profile")).content.decode()
    assert 'name="username"' in profile and reverse("password_change") not in profile

    client.post(reverse("conversations:account-delete"), {"username": "not-ada"})
    assert User.objects.get(username="ada").is_active
    client.post(reverse("conversations:account-delete"), {"username": "ada"})
    assert not User.objects.get(username="ada").is_active  # closed at once; its data goes in a task
    run_queued_tasks()
    assert not User.objects.filter(username="ada").exists()


def test_refused_single_sign_ons_do_not_lock_out_the_next_person_from_that_address(sso, settings):
    """A refused sign-on is no password guess: it must not count towards django-axes' lockout of the address."""
    settings.AXES_FAILURE_LIMIT = 2
    User.objects.create_user("grace", "grace@example.com", "local-Passw0rd!")
    sso.set_people({"mallory": person("grace@example.com", verified=False), "ada": person("ada@example.com")})
    for _attempt in range(3):
        sign_in(Client(), sso, "mallory", PASSWORD)

    client = Client()
    sign_in(client, sso, "ada", PASSWORD)

    assert signed_in_user(client).username == "ada"


def test_two_first_sign_ins_at_once_end_in_the_one_account(sso, rf, monkeypatch):
    """The race of a person's first sign-in in two tabs: the second finds no account (the first has not committed
    yet), creates one and hits the identity's unique constraint; it signs in to the first one's account, no 500."""
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.oidc import OidcBackend

    first = User.objects.create_user("first-tab")
    OidcIdentity.objects.create(user=first, issuer="https://idp.example", subject="the-sub")
    backend = OidcBackend()
    backend.request = rf.get("/oidc/callback/")
    backend.request.session = SessionStore()
    backend.issuer = "https://idp.example"
    claims = {"sub": "the-sub", "email": "same@example.com", "email_verified": True}
    monkeypatch.setattr(backend, "get_userinfo", lambda access_token, id_token, payload: claims)
    monkeypatch.setattr(backend, "filter_users_by_claims", lambda claims: [])  # as read before the first committed

    assert backend.get_or_create_user("access", "id", {"sub": "the-sub"}) == first
    assert User.objects.filter(email="same@example.com").count() == 0  # the second account was rolled back
