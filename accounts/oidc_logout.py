"""OpenID Connect Back-Channel Logout 1.0: the provider POSTs a signed Logout Token, and the sessions here of the
person it names (by `sub`) or of the provider session it names (by `sid`) end.

The token is checked as the specification's section 2.6 says: the signature (OIDC_RP_SIGN_ALGO, with the key from
the provider's JWKS fetched as for ID tokens), `iss` is OIDC_OP_ISSUER, `aud` holds our client id, `iat` is
recent, the back-channel logout event is there, `sub` or `sid` is, `nonce` is not, and a `jti` is used once.
Sessions are found through accounts.UserSession's indexed columns. What a signed-out person still holds is said in
the README: an answer already running finishes and is stored; API keys are separate credentials and stay valid.
"""

import hashlib
import logging
import time

import jwt
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import OidcIdentity, UserSession
from accounts.oidc import SignInRefused, oidc_enabled, provider_signing_key

logger = logging.getLogger(__name__)

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# A logout token is sent as soon as the provider signs it: one issued longer ago than this is refused, and a
# jti is remembered this long (plus the clock leeway), so a replay is refused by one check or the other.
MAX_AGE_SECONDS = 300
LEEWAY_SECONDS = 60


class LogoutTokenInvalid(Exception):
    """A logout token that must not end anything; the message says why (to the provider, and in the log)."""


def backchannel_logout_enabled() -> bool:
    return oidc_enabled() and bool(settings.OIDC_OP_ISSUER)


def logout_token_claims(token: str) -> dict:
    """The claims of a valid logout token. Raises LogoutTokenInvalid."""
    algorithm = settings.OIDC_RP_SIGN_ALGO
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise LogoutTokenInvalid(f"not a JWT: {exc}") from None
    if header.get("alg") != algorithm:
        raise LogoutTokenInvalid(f"signed with {header.get('alg')!r}, not {algorithm}")
    if algorithm.startswith("HS"):
        key = settings.OIDC_RP_CLIENT_SECRET
    else:
        try:
            key = provider_signing_key(token).key
        except (SignInRefused, SuspiciousOperation) as exc:
            raise LogoutTokenInvalid(f"no signing key: {getattr(exc, 'message', exc)}") from None
    try:
        claims = jwt.decode(
            token, key, algorithms=[algorithm], audience=settings.OIDC_RP_CLIENT_ID, issuer=settings.OIDC_OP_ISSUER,
            leeway=LEEWAY_SECONDS, options={"require": ["iss", "aud", "iat"]},
        )
    except jwt.InvalidTokenError as exc:
        raise LogoutTokenInvalid(str(exc)) from None
    if claims["iat"] < time.time() - MAX_AGE_SECONDS - LEEWAY_SECONDS:
        raise LogoutTokenInvalid("issued too long ago (iat)")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise LogoutTokenInvalid(f"the events claim has no {LOGOUT_EVENT} member")
    if "nonce" in claims:
        raise LogoutTokenInvalid("a logout token must not have a nonce")
    subject, sid = claims.get("sub"), claims.get("sid")
    if not (subject or sid) or not isinstance(subject or "", str) or not isinstance(sid or "", str):
        raise LogoutTokenInvalid("neither sub nor sid")
    jti = claims.get("jti")
    if jti is not None:
        seen_for = MAX_AGE_SECONDS + 2 * LEEWAY_SECONDS
        seen_key = "oidc-logout-jti:" + hashlib.sha256(f"{claims['iss']}\n{jti}".encode()).hexdigest()
        if not cache.add(seen_key, 1, timeout=seen_for):  # the provider's jti, of any length, as a safe key
            raise LogoutTokenInvalid("this jti was used before")
    return claims


def provider_sessions_end(*, issuer: str, subject: str | None, sid: str | None) -> int:
    """End the sessions a valid logout token names; returns how many ended. With `sid`, the sessions started by
    that provider session (of that subject's user, if `sub` is there too); with `sub` alone, all the sessions of
    the user linked to that subject, however they signed in. An unknown subject or sid ends nothing."""
    user_id = None
    if subject:
        user_id = (OidcIdentity.objects.filter(issuer=issuer, subject=subject)
                   .values_list("user_id", flat=True).first())
        if user_id is None:
            return 0
    if sid:
        sessions = UserSession.objects.for_provider_session(issuer, sid)
        if user_id is not None:
            sessions = sessions.filter(user_id=user_id)
    else:
        sessions = UserSession.objects.for_user(user_id)
    ended, _by_model = sessions.delete()
    return ended


def _refusal(description: str) -> JsonResponse:
    # The caller is the provider: the specification's OAuth 2.0 error shape, not the site's API one.
    return JsonResponse({"error": "invalid_request", "error_description": description}, status=400)


@csrf_exempt  # the provider's server posts it, with no cookie: the signed token is the authentication
@require_POST
@never_cache
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    if not backchannel_logout_enabled():
        raise Http404("Back-channel logout is not configured.")
    token = request.POST.get("logout_token", "")
    if not token:
        return _refusal("logout_token is missing")
    try:
        claims = logout_token_claims(token)
    except LogoutTokenInvalid as refusal:
        logger.warning("back-channel logout refused: %s", refusal)
        return _refusal(f"invalid logout token: {refusal}")
    ended = provider_sessions_end(issuer=claims["iss"], subject=claims.get("sub"), sid=claims.get("sid"))
    logger.info("back-channel logout: %d session(s) ended (sub %s, sid %s)", ended,
                claims.get("sub") or "-", claims.get("sid") or "-")
    return HttpResponse(status=200)
