"""OpenID Connect back-channel logout against the real test provider (tests/oidc_provider): a person signed in
through the real flow is signed out here when the provider sends its logout token; every malformed, foreign or
replayed token is refused and ends nothing."""

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from jwcrypto import jwk

from accounts.models import OidcIdentity, User, UserSession
from accounts.oidc_logout import LOGOUT_EVENT, provider_sessions_end
from accounts.sessions import OIDC_ISSUER_SESSION_KEY, OIDC_SID_SESSION_KEY, SessionStore
from tests.oidc_provider.flow import sign_in
from tests.oidc_provider.server import CLIENT_ID

pytestmark = pytest.mark.django_db

PASSWORD = "idp-Passw0rd!"
LOGOUT_PATH = "/accounts/oidc/backchannel-logout/"


def person(email, *, sid=None):
    entry = {"password": PASSWORD, "email": email, "email_verified": True}
    if sid is not None:
        entry["sid"] = sid
    return entry


def signed_in(client) -> bool:
    response = client.get(reverse("profile"))
    return response.status_code == 200


# --- End to end: the provider signs the token and posts it to chatsite, served over HTTP -------------------------

@pytest.fixture
def provider_posts_to_chatsite(sso, live_server_127):
    sso.register_backchannel_logout(f"{live_server_127.url}{LOGOUT_PATH}")
    return sso


@pytest.mark.django_db(transaction=True)  # the live server reads the sessions the test client made
def test_the_provider_signs_a_person_out_and_their_next_request_is_signed_out(provider_posts_to_chatsite):
    sso = provider_posts_to_chatsite
    sso.set_people({"ada": person("ada@example.com"), "bob": person("bob@example.com")})
    ada_laptop, ada_phone, bob = Client(), Client(), Client()
    for client, username in ((ada_laptop, "ada"), (ada_phone, "ada"), (bob, "bob")):
        sign_in(client, sso, username, PASSWORD)
        assert signed_in(client)

    answer = sso.sign_out(username="ada")

    assert answer["status"] == 200, answer["body"]
    assert "no-store" in answer["cache_control"]
    assert not signed_in(ada_laptop) and not signed_in(ada_phone)
    assert ada_laptop.get(reverse("profile"))["Location"].startswith(reverse("login"))
    assert signed_in(bob)
    assert UserSession.objects.filter(user__username="ada").count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_logout_by_provider_session_ends_only_the_sessions_it_started(provider_posts_to_chatsite):
    sso = provider_posts_to_chatsite
    laptop, phone = Client(), Client()
    sso.set_people({"ada": person("ada@example.com", sid="idp-session-laptop")})
    sign_in(laptop, sso, "ada", PASSWORD)
    sso.set_people({"ada": person("ada@example.com", sid="idp-session-phone")})
    sign_in(phone, sso, "ada", PASSWORD)

    answer = sso.sign_out(sid="idp-session-laptop")

    assert answer["status"] == 200, answer["body"]
    assert not signed_in(laptop)
    assert signed_in(phone)


@pytest.mark.django_db(transaction=True)
def test_a_token_with_sub_and_sid_ends_that_persons_session_of_that_provider_session(provider_posts_to_chatsite):
    sso = provider_posts_to_chatsite
    sso.set_people({"ada": person("ada@example.com", sid="shared-sid"), "bob": person("bob@example.com")})
    ada, bob = Client(), Client()
    sign_in(ada, sso, "ada", PASSWORD)
    sign_in(bob, sso, "bob", PASSWORD)
    UserSession.objects.filter(user__username="bob").update(oidc_sid="shared-sid")  # another person, same sid

    assert sso.sign_out(username="ada", sid="shared-sid")["status"] == 200

    assert not signed_in(ada)
    assert signed_in(bob)


# --- The session store: the columns a logout looks sessions up by ----------------------------------------------

def test_a_sign_in_records_the_user_and_the_provider_session_in_the_sessions_columns(sso):
    sso.set_people({"ada": person("ada@example.com", sid="idp-session-1")})
    client = Client()
    sign_in(client, sso, "ada", PASSWORD)

    session = UserSession.objects.get(session_key=client.session.session_key)
    assert session.user == User.objects.get(username="ada")
    assert (session.oidc_issuer, session.oidc_sid) == (sso.issuer, "idp-session-1")


def test_a_password_session_is_recorded_and_follows_its_new_key_after_a_password_change(user, password):
    client = Client()
    client.post(reverse("login"), {"username": user.username, "password": password})
    first_key = client.session.session_key
    changed = client.post(reverse("password_change"), {  # keeps the person signed in under a new session key
        "old_password": password, "new_password1": "another-Strong-passw0rd!",
        "new_password2": "another-Strong-passw0rd!",
    })
    assert changed.status_code == 302

    assert first_key != client.session.session_key
    assert list(UserSession.objects.for_user(user.pk).values_list("session_key", flat=True)) == [
        client.session.session_key
    ]


def test_ending_a_persons_sessions_is_two_queries_whatever_the_number_of_sessions(django_assert_num_queries):
    ada = User.objects.create_user("ada")
    OidcIdentity.objects.create(user=ada, issuer="https://idp.example", subject="ada-sub")
    for _session in range(5):
        store = SessionStore()
        store[SESSION_KEY] = str(ada.pk)
        store.save()
    other = SessionStore()
    other[SESSION_KEY] = str(User.objects.create_user("bob").pk)
    other.save()

    # 1. the identity's user id, 2. DELETE the user's sessions (by the indexed user column)
    with django_assert_num_queries(2):
        ended = provider_sessions_end(issuer="https://idp.example", subject="ada-sub", sid=None)

    assert ended == 5
    assert UserSession.objects.count() == 1


# --- Refusals: tokens signed here with the provider's own key (or another), posted as the provider would -------

@pytest.fixture
def ada_session(sso):
    """Ada, linked to the provider, with a session started by provider session `idp-sid`."""
    ada = User.objects.create_user("ada", "ada@example.com")
    OidcIdentity.objects.create(user=ada, issuer=sso.issuer, subject="ada-sub")
    store = SessionStore()
    store.update({SESSION_KEY: str(ada.pk), OIDC_ISSUER_SESSION_KEY: sso.issuer, OIDC_SID_SESSION_KEY: "idp-sid"})
    store.save()
    return store.session_key


def logout_token(sso, *, key_pem=None, algorithm="RS256", drop=(), **claims):
    now = int(time.time())
    payload = {
        "iss": sso.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex,
        "sub": "ada-sub", "events": {LOGOUT_EVENT: {}}, **claims,
    }
    for name in drop:
        payload.pop(name)
    kid = jwk.JWK.from_pem(sso.private_key_pem.encode()).thumbprint()  # the provider's key id
    return jwt.encode(payload, key_pem or sso.private_key_pem, algorithm=algorithm, headers={"kid": kid})


def post_logout(token):
    # As the provider's server posts it: no cookie, no CSRF token, and CSRF checks on.
    return Client(enforce_csrf_checks=True).post(LOGOUT_PATH, {"logout_token": token})


def test_a_valid_token_by_subject_ends_the_persons_sessions(sso, ada_session):
    response = post_logout(logout_token(sso))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert not UserSession.objects.filter(session_key=ada_session).exists()


def another_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


REFUSALS = {
    "bad signature": ({"key_pem": another_key_pem()}, "Signature verification failed"),
    "wrong aud": ({"aud": "another-client"}, "Audience"),
    "wrong iss": ({"iss": "https://another-idp.example"}, "issuer"),
    "nonce present": ({"nonce": "n-0S6_WzA2Mj"}, "nonce"),
    "missing events": ({"drop": ("events",)}, "events"),
    "another event": ({"events": {"http://schemas.openid.net/event/other": {}}}, "events"),
    "neither sub nor sid": ({"drop": ("sub",)}, "neither sub nor sid"),
    "no iat": ({"drop": ("iat",)}, "iat"),
    "issued long ago": ({"iat": int(time.time()) - 3600, "exp": int(time.time()) + 60}, "too long ago"),
    "expired": ({"exp": int(time.time()) - 3600}, "expired"),
    "another algorithm": ({"algorithm": "HS256", "key_pem": CLIENT_ID * 4}, "not RS256"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_an_invalid_token_is_refused_and_ends_nothing(sso, ada_session, case):
    changes, reason = REFUSALS[case]

    response = post_logout(logout_token(sso, **changes))

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert reason in body["error_description"]
    assert "no-store" in response["Cache-Control"]
    assert UserSession.objects.filter(session_key=ada_session).exists()


def test_a_replayed_token_is_refused(sso, ada_session):
    token = logout_token(sso, sub="someone-else")
    assert post_logout(token).status_code == 200

    replayed = post_logout(token)

    assert replayed.status_code == 400
    assert "jti" in replayed.json()["error_description"]


def test_a_request_without_a_token_or_with_garbage_is_refused(sso):
    assert post_logout("").status_code == 400
    assert post_logout("not.a.jwt").json()["error"] == "invalid_request"


def test_an_unknown_subject_or_sid_ends_nothing_and_is_not_an_error(sso, ada_session):
    assert post_logout(logout_token(sso, sub="nobody-here")).status_code == 200
    assert post_logout(logout_token(sso, drop=("sub",), sid="unknown-sid")).status_code == 200
    assert UserSession.objects.filter(session_key=ada_session).exists()


def test_a_token_with_only_sid_ends_the_sessions_of_that_provider_session(sso, ada_session):
    assert post_logout(logout_token(sso, drop=("sub",), sid="idp-sid")).status_code == 200
    assert not UserSession.objects.filter(session_key=ada_session).exists()


def test_the_endpoint_is_off_without_single_sign_on_or_a_configured_issuer(sso, settings):
    token = logout_token(sso)
    settings.OIDC_OP_ISSUER = ""
    assert post_logout(token).status_code == 404
    settings.OIDC_OP_ISSUER = sso.issuer
    settings.OIDC_RP_CLIENT_ID = ""
    assert post_logout(token).status_code == 404


def test_only_post(sso):
    assert Client().get(LOGOUT_PATH).status_code == 405


def test_an_id_token_from_another_issuer_is_refused_at_sign_in(sso, settings):
    settings.OIDC_OP_ISSUER = "https://another-idp.example"
    sso.set_people({"ada": person("ada@example.com")})
    client = Client()

    sign_in(client, sso, "ada", PASSWORD)

    assert client.session.get(SESSION_KEY) is None
    assert not User.objects.filter(username="ada").exists()
