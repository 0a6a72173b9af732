"""The provider's people, read from the JSON file the test writes, and the claims it gives about them."""

import json
import os

from django.contrib.auth import get_user_model
from oauth2_provider.oauth2_validators import OAuth2Validator


def person(username: str) -> dict | None:
    with open(os.environ["IDP_DIRECTORY"]) as directory:
        return json.load(directory).get(username)


class DirectoryBackend:
    """Signs in the directory's people with their password there; their user row is made on first sign-in."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        entry = person(username or "")
        if entry is None or entry["password"] != password:
            return None
        user, _created = get_user_model().objects.get_or_create(username=username)
        return user

    def get_user(self, user_id):
        return get_user_model().objects.filter(pk=user_id).first()


class DirectoryValidator(OAuth2Validator):
    oidc_claim_scope = None  # every claim below, whatever the scopes: the tests decide what the directory says

    def get_additional_claims(self, request):
        entry = person(request.user.username) or {}
        claims = {"preferred_username": request.user.username}
        for claim in ("email", "email_verified", "groups", "sid"):  # sid: the provider session the test names
            if claim in entry:
                claims[claim] = entry[claim]
        return claims
