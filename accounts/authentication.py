"""Personal API keys for integrations: `Authorization: Bearer cs_...` (never in a query string)."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import API_KEY_PREFIX, ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


def user_for_api_key(raw_key: str):
    """The active key's user, or None. Touches last_used_at at most once a minute."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    key = ApiKey.objects.for_api_key(raw_key)
    if key is None or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user, key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: use 'Bearer <key>'.")
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        found = user_for_api_key(raw_key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        return found

    def authenticate_header(self, request):
        return self.keyword
