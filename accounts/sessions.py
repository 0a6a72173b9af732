"""The session engine (SESSION_ENGINE = "accounts.sessions"): Django's database sessions stored as
accounts.UserSession, whose indexed columns say whose session it is and which provider session started it."""

from typing import cast

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError

from accounts.models import User, UserSession

OIDC_ISSUER_SESSION_KEY = "oidc_issuer"
OIDC_SID_SESSION_KEY = "oidc_sid"


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls):
        return UserSession

    def create_model_instance(self, data):
        session = cast(UserSession, super().create_model_instance(data))
        try:
            session.user_id = User._meta.pk.to_python(data.get(SESSION_KEY))
        except ValidationError:  # not a user id (Django's get_user treats such a session as signed out too)
            session.user_id = None
        session.oidc_issuer = str(data.get(OIDC_ISSUER_SESSION_KEY) or "")[:255]
        session.oidc_sid = str(data.get(OIDC_SID_SESSION_KEY) or "")[:255]
        return session
