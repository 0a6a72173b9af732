"""Users, their sessions, personal API keys, sign-up invites and single sign-on identities."""

import hashlib
import hmac
import secrets
from datetime import datetime
from functools import partial
from typing import ClassVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.base_session import AbstractBaseSession, BaseSessionManager
from django.db import models
from django.urls import reverse
from django.utils import timezone

API_KEY_PREFIX = "cs_"


class User(AbstractUser):
    """chatsite's user: Django's default user, as our own model so it can grow without a migration saga."""

    approval_pending = models.BooleanField(
        default=False,
        db_default=False,  # rows inserted by code that predates the column (a rolling deploy, a migration test)
        help_text="Signed up while SIGNUP_MODE=approval and not yet approved: inactive until staff approve it.",
    )
    signup_invite = models.ForeignKey(
        "accounts.Invite", on_delete=models.SET_NULL, null=True, blank=True, related_name="users",
        help_text="The invite link this account signed up with (SIGNUP_MODE=invite).",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # A pending account cannot be used: approving it is what makes it active (the admin's action).
            models.CheckConstraint(
                condition=models.Q(approval_pending=False) | models.Q(is_active=False),
                name="accounts_user_pending_is_inactive",
                violation_error_message="An account waiting for approval cannot be active: approve it instead.",
            ),
        ]

    def approve(self) -> None:
        self.approval_pending = False
        self.is_active = True
        self.save(update_fields=["approval_pending", "is_active"])


class InviteQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(uses__lt=models.F("max_uses")).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def redeem(self, token: str) -> "Invite | None":
        """Take one use of the usable invite `token` (atomic: two sign-ups cannot share the last use), or None."""
        invite = self.usable().filter(token=token).first()
        if invite is None:
            return None
        taken = self.usable().filter(pk=invite.pk).update(uses=models.F("uses") + 1)
        return invite if taken else None


class Invite(models.Model):
    """A sign-up link an admin hands out while SIGNUP_MODE=invite: one use or a few, with an optional expiry."""

    token = models.CharField(
        max_length=64, unique=True, default=partial(secrets.token_urlsafe, 24), editable=False,
        help_text="The secret part of the link.",
    )
    note = models.CharField(max_length=200, blank=True, help_text="Whom it is for, e.g. 'new lab members'.")
    max_uses = models.PositiveIntegerField(default=1, help_text="How many accounts may sign up with it.")
    uses = models.PositiveIntegerField(default=0, editable=False, help_text="Accounts that signed up with it.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Optional expiry; empty = never.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_uses__gte=1), name="accounts_invite_max_uses_positive"),
            models.CheckConstraint(
                condition=models.Q(uses__lte=models.F("max_uses")), name="accounts_invite_uses_within_max",
                violation_error_message="An invite cannot allow fewer uses than it has already had.",
            ),
        ]

    def __str__(self):
        return self.note or f"invite {self.token[:6]}…"

    def get_absolute_url(self) -> str:
        return f"{reverse('signup')}?{urlencode({'invite': self.token})}"

    @property
    def is_usable(self) -> bool:
        if self.uses >= self.max_uses:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class OidcIdentity(models.Model):
    """The identity provider's account (issuer and subject) that signs in as this user: later sign-ins find the
    user by it, so an e-mail changed at the provider neither loses the account nor reaches another one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities")
    issuer = models.CharField(max_length=255, help_text="The provider's `iss`.")
    subject = models.CharField(max_length=255, help_text="The provider's `sub` for this person.")
    created_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "OpenID Connect identity"
        verbose_name_plural = "OpenID Connect identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="accounts_oidcidentity_unique_subject"),
        ]

    def __str__(self):
        return f"{self.subject} at {self.issuer}"


class UserSessionManager(BaseSessionManager):
    def for_user(self, user_id):
        return self.filter(user_id=user_id)

    def for_provider_session(self, issuer: str, sid: str):
        return self.filter(oidc_issuer=issuer, oidc_sid=sid)


class UserSession(AbstractBaseSession):
    """A browser session (SESSION_ENGINE accounts.sessions: Django's database sessions, with Django's documented
    way to extend them) that also records, from its data, who is signed in and, after a single sign-on, the
    provider's session id. Both are indexed, so ending a person's sessions (an OpenID Connect back-channel logout)
    is one DELETE, never a scan of everybody's sessions. The columns are rewritten on every save of the session,
    so a new session key (log-in, password change) carries them along."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="sessions",
        db_constraint=False,  # a session saved as its user is being deleted must not fail the request
        help_text="The signed-in user; empty for an anonymous session.",
    )
    oidc_issuer = models.CharField(max_length=255, blank=True, default="",
                                   help_text="The provider (`iss`) of the single sign-on that started the session.")
    oidc_sid = models.CharField(max_length=255, blank=True, default="",
                                help_text="The provider's session id (`sid`) from that sign-on's ID token.")

    objects: ClassVar[UserSessionManager] = UserSessionManager()

    class Meta(AbstractBaseSession.Meta):
        verbose_name = "session"
        verbose_name_plural = "sessions"
        indexes = [models.Index(fields=["oidc_issuer", "oidc_sid"], name="accounts_session_oidc_sid")]

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore


def hash_api_key(raw_key: str) -> str:
    # Keys are 256-bit random secrets, so a fast unsalted hash is enough (no dictionary to attack).
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user)

    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def for_api_key(self, raw_key: str):
        """The active key `raw_key` is, with its user (one indexed query), or None.

        Looked up by the key's SHA-256 (the key itself is never stored), then compared in constant time.
        """
        key_hash = hash_api_key(raw_key)
        key = self.active().select_related("user").filter(key_hash=key_hash).first()
        if key is None or not hmac.compare_digest(key.key_hash, key_hash):
            return None
        return key


class ApiKey(models.Model):
    key: str  # not a column: the raw key, on the row `generate` just made only (shown once, then gone)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys",
        help_text="Whose key this is; requests with it act as this user.",
    )
    name = models.CharField(max_length=100, help_text="A label chosen by the user, e.g. 'laptop script'.")
    prefix = models.CharField(
        max_length=16, unique=True, help_text="The key's visible start, to recognise it in lists."
    )
    key_hash = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the whole key; the key itself is never stored."
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Optional expiry; empty = never.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when the owner revokes the key.")
    store_chats = models.BooleanField(
        default=True,
        help_text="Off: every call made with this key is answered and counted but kept out of the history, as if "
        "it sent store: false (a temporary chat: not listed, deleted after CHAT_TEMPORARY_HOURS). For clients "
        "that cannot send store: false, such as a tool's background tasks.",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @classmethod
    def generate(
        cls, *, user, name: str, expires_at: datetime | None = None, store_chats: bool = True
    ) -> tuple["ApiKey", str]:
        """Create a key; returns (row, raw key). The raw key is shown once and never again."""
        prefix = secrets.token_hex(4)
        raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            user=user, name=name, prefix=prefix, key_hash=hash_api_key(raw), expires_at=expires_at,
            store_chats=store_chats,
        )
        return key, raw
