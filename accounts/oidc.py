"""Single sign-on with OpenID Connect, through mozilla-django-oidc: the authorization code flow with PKCE.

The library runs the protocol (state, nonce, PKCE, the ID token's signature); this module decides who the person
is here. A returning person is found by the provider's issuer and subject (OidcIdentity). A first sign-in links
to an existing account only when the provider says it verified the e-mail address (`email_verified`); otherwise
a new account is made as SIGNUP_MODE allows. On every sign-in the user's groups become those named in the
OIDC_GROUPS_CLAIM claim that exist here. The back-channel requests (token, signing keys, user info) go through
chatsite/outbound.py, the one outbound HTTP wrapper, by overriding the backend's public fetch methods. A sign-in's
issuer and provider session id (`sid`) are kept in the session, for back-channel logout (accounts/oidc_logout.py).
"""

import json
import logging
import re
from dataclasses import dataclass

import jwt
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect, resolve_url
from django.utils import timezone
from django.utils.encoding import smart_str
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts.models import OidcIdentity, User
from accounts.sessions import OIDC_ISSUER_SESSION_KEY, OIDC_SID_SESSION_KEY
from accounts.signup import SignupRefused, account_create
from chatsite import outbound

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "application/jwk-set+json")
SIGNUP_INVITE_SESSION_KEY = "oidc_signup_invite"
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True)
class ProviderSession:
    """The provider's session a sign-in belongs to: its issuer and the ID token's `sid` (empty if none sent)."""

    issuer: str
    sid: str


class SignInRefused(Exception):
    """A single sign-on that must not sign anyone in; the message tells the person why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def oidc_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)


def _fetch_json(url: str, **kwargs) -> dict:
    try:
        fetched = async_to_sync(outbound.fetch)(url, content_types=JSON_TYPES, **kwargs)
    except outbound.OutboundError as exc:
        logger.warning("single sign-on: %s: %s", url, exc)
        raise SignInRefused(_("The identity provider could not be reached. Try again in a moment.")) from None
    try:
        data = json.loads(fetched.body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or fetched.truncated:
        raise SignInRefused(_("The identity provider's answer could not be read."))
    return data


def provider_signing_key(token: str) -> jwt.PyJWK:
    """The key of the provider's JWKS (OIDC_OP_JWKS_ENDPOINT) that signed `token`, by its header's kid and alg.
    Raises SignInRefused when the keys cannot be fetched, SuspiciousOperation when none matches."""
    jwks = _fetch_json(settings.OIDC_OP_JWKS_ENDPOINT)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise SuspiciousOperation(f"The token's header cannot be read: {exc}") from None
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") != smart_str(header.get("kid")):
            continue
        if "alg" in jwk and jwk["alg"] != smart_str(header.get("alg")):
            continue
        try:
            return jwt.PyJWK(jwk)
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"The provider's key {jwk.get('kid')!r} cannot be used: {exc}") from None
    raise SuspiciousOperation("No key of the provider's JWKS matches the token.")


def email_verified(claims: dict) -> bool:
    # Some providers send the boolean as a string.
    return claims.get("email_verified") in (True, "true", "True")


def groups_sync(user: User, claims: dict) -> None:
    """Make the user's groups those the groups claim names that exist here (added and removed). A provider that
    sends no such claim leaves them alone: a claim left out of a token should not empty everyone's groups."""
    claim = settings.OIDC_GROUPS_CLAIM
    if not claim or claim not in claims:
        return
    names = claims[claim]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        logger.warning("single sign-on: the %r claim is not a list of names; groups left as they were", claim)
        return
    groups = list(Group.objects.filter(name__in=names))
    unknown = set(names) - {group.name for group in groups}
    if unknown:
        logger.info("single sign-on: groups not defined here were ignored: %s", ", ".join(sorted(unknown)))
    user.groups.set(groups)


def username_for(claims: dict) -> str:
    """A free username from preferred_username, else the e-mail's local part: `ada`, then `ada-2`, ..."""
    base = claims.get("preferred_username") or (claims.get("email") or "").partition("@")[0] or "user"
    base = USERNAME_UNSAFE.sub("", str(base))[:140] or "user"
    candidate, number = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


class OidcBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with chatsite's rules for finding, linking and creating accounts."""

    issuer = ""

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce: a password log-in carrying ?code=&state= in its URL is not an
        # OpenID Connect callback.
        if not oidc_enabled() or request is None or "nonce" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except SignInRefused as refusal:
            messages.error(request, refusal.message)
        except SuspiciousOperation as exc:
            logger.warning("single sign-on refused: %s", exc)
            messages.error(request, _("The identity provider's answer could not be verified."))
        return None

    def get_user(self, user_id):
        return ModelBackend.get_user(self, user_id)  # as for passwords: an inactive account's session ends

    def get_token(self, payload):
        return _fetch_json(self.OIDC_OP_TOKEN_ENDPOINT, form=payload)

    def retrieve_matching_jwk(self, token):
        return provider_signing_key(token)

    def get_userinfo(self, access_token, id_token, payload):
        if settings.OIDC_OP_ISSUER and payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation("The ID token is from another issuer than OIDC_OP_ISSUER.")
        claims = _fetch_json(self.OIDC_OP_USER_ENDPOINT, headers={"Authorization": f"Bearer {access_token}"})
        # OpenID Connect Core 5.3.2: user info for another subject than the ID token's must not be used.
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The user info is about another subject than the ID token.")
        self.issuer = str(payload.get("iss") or "")
        # For the callback view, which stores them in the session once the person is signed in.
        self.request.oidc_provider_session = ProviderSession(issuer=self.issuer, sid=str(payload.get("sid") or ""))
        return claims

    def verify_claims(self, claims):
        return bool(claims.get("sub")) and bool(self.issuer)

    def filter_users_by_claims(self, claims):
        identity = (
            OidcIdentity.objects.select_related("user").filter(issuer=self.issuer, subject=claims["sub"]).first()
        )
        if identity is not None:
            return [identity.user]
        email = claims.get("email")
        if not email:
            return []
        accounts = list(User.objects.filter(email__iexact=email)[:2])
        if accounts and not email_verified(claims):
            raise SignInRefused(
                _("An account here already uses %(email)s, but your identity provider has not verified that "
                  "address, so the two were not linked. Verify it there, or ask an administrator.") % {"email": email}
            )
        if len(accounts) > 1:
            raise SignInRefused(
                _("Several accounts here use %(email)s: ask an administrator to link yours.") % {"email": email}
            )
        return accounts

    def get_or_create_user(self, access_token, id_token, payload):
        try:
            return super().get_or_create_user(access_token, id_token, payload)
        except IntegrityError:
            # The same person's first sign-in twice at once (two tabs): the other request made the account first.
            identity = OidcIdentity.objects.select_related("user").filter(
                issuer=self.issuer, subject=payload.get("sub")
            ).first()
            if identity is None:
                raise SignInRefused(_("Single sign-on did not complete. Try again.")) from None
            return identity.user

    @transaction.atomic
    def create_user(self, claims):
        email = claims.get("email") or ""
        if settings.SIGNUP_MODE == "domain" and not email_verified(claims):
            raise SignInRefused(_("Sign-up here needs an e-mail address your identity provider has verified."))
        user = User(username=username_for(claims), email=email)
        user.set_unusable_password()
        try:
            account_create(user, invite_token=self.request.session.pop(SIGNUP_INVITE_SESSION_KEY, None))
        except SignupRefused as refusal:
            raise SignInRefused(refusal.message) from None
        OidcIdentity.objects.create(user=user, issuer=self.issuer, subject=claims["sub"])
        groups_sync(user, claims)
        logger.info("single sign-on created user %s", user.pk)
        return user

    @transaction.atomic
    def update_user(self, user, claims):
        identity, created = OidcIdentity.objects.get_or_create(
            issuer=self.issuer, subject=claims["sub"], defaults={"user": user}
        )
        if created:
            logger.info("single sign-on linked user %s by verified e-mail", user.pk)
        else:
            identity.last_login_at = timezone.now()
            identity.save(update_fields=["last_login_at"])
        groups_sync(user, claims)
        return user


class OidcAuthenticationRequestView(OIDCAuthenticationRequestView):
    """Starts a sign-in at the provider (404 without single sign-on). An invite link's token rides along in the
    session, for SIGNUP_MODE=invite."""

    def get(self, request):
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        if request.GET.get("invite"):
            request.session[SIGNUP_INVITE_SESSION_KEY] = request.GET["invite"]
        return super().get(request)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """The provider's redirect back: signs in, or says why not (waiting for approval, refused, cancelled)."""

    def get(self, request):
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().get(request)

    def login_success(self):
        response = super().login_success()
        # Recorded in the session's indexed columns (accounts/sessions.py), for back-channel logout by sid.
        provider_session = getattr(self.request, "oidc_provider_session", None)
        if provider_session is not None:
            self.request.session[OIDC_ISSUER_SESSION_KEY] = provider_session.issuer
            self.request.session[OIDC_SID_SESSION_KEY] = provider_session.sid
        return response

    @property
    def failure_url(self):
        return resolve_url(settings.LOGIN_URL)  # where the message saying why is shown

    def login_failure(self):
        user = getattr(self, "user", None)
        if user is not None and user.approval_pending:
            self.request.session["pending_username"] = user.username
            return redirect("signup_pending")
        if user is not None and not user.is_active:
            messages.error(self.request, _("This account is deactivated."))
        elif self.request.GET.get("error"):
            messages.error(self.request, _("Single sign-on did not complete: the identity provider refused or was "
                                           "cancelled."))
        elif not messages.get_messages(self.request):
            messages.error(self.request, _("Single sign-on did not complete. Try again."))
        return super().login_failure()
