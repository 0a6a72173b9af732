"""The provider's side of back-channel logout, which django-oauth-toolkit does not have: a test asks the provider
to sign a person out, and it POSTs a Logout Token, signed with its own key, to the relying party's registered
back-channel logout URI, as a provider does when an administrator disables someone or they log out everywhere."""

import json
import os
import time
import uuid

import jwt
import requests
from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from jwcrypto import jwk
from oauth2_provider.models import Application
from oauth2_provider.settings import oauth2_settings

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_uris() -> dict[str, str]:
    """client id -> its back-channel logout URI, from the file the test writes (IDP_BACKCHANNEL_LOGOUT_URIS)."""
    with open(os.environ["IDP_BACKCHANNEL_LOGOUT_URIS"]) as registered:
        return json.load(registered)


@csrf_exempt  # a test's trigger, not a form
@require_POST
def sign_out(request):
    """POST client_id, and username (sends `sub`) and/or sid: the provider signs a logout token and sends it.
    Answers the relying party's status and body."""
    application = Application.objects.get(client_id=request.POST["client_id"])
    now = int(time.time())
    claims = {
        "iss": oauth2_settings.oidc_issuer(request),
        "aud": application.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "events": {LOGOUT_EVENT: {}},
    }
    if request.POST.get("username"):
        user = get_user_model().objects.get(username=request.POST["username"])
        claims["sub"] = str(user.pk)  # the toolkit's subject for a person
    if request.POST.get("sid"):
        claims["sid"] = request.POST["sid"]
    pem = oauth2_settings.OIDC_RSA_PRIVATE_KEY
    kid = jwk.JWK.from_pem(pem.encode()).thumbprint()  # the kid the toolkit's JWKS and ID tokens carry
    token = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid, "typ": "logout+jwt"})
    answer = requests.post(logout_uris()[application.client_id], data={"logout_token": token}, timeout=10)
    return JsonResponse({"status": answer.status_code, "body": answer.text,
                         "cache_control": answer.headers.get("Cache-Control", "")})
