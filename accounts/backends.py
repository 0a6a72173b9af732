"""SSO_ONLY for every password path (the login page, the admin's login form and anything else that calls
`authenticate()` with a password), and django-axes' throttle kept to password attempts."""

from django.conf import settings
from django.core.exceptions import PermissionDenied


class PasswordsOffWhenSsoOnly:
    """First in AUTHENTICATION_BACKENDS: PermissionDenied stops `authenticate()` before any other backend (Django's
    ModelBackend stays listed as it was, so the sessions it signed in stay valid). No `get_user`: it signs no one
    in, so nothing (a test's `force_login` included) picks it as a session's backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if settings.SSO_ONLY and password is not None:
            raise PermissionDenied("Password sign-in is turned off (SSO_ONLY).")
        return None


def not_a_password_attempt(request, credentials=None) -> bool:
    """AXES_WHITELIST_CALLABLE: django-axes throttles password guesses. A single sign-on callback carries no
    password (the provider throttles its own log-in), and a refused one must not lock its address out."""
    return (credentials or {}).get("password") is None
