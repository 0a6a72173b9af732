"""Users and their personal API keys."""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

API_KEY_PREFIX = "cs_"


class User(AbstractUser):
    """chatsite's user: Django's default user, as our own model so it can grow without a migration saga."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


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
    def generate(cls, *, user, name: str, expires_at: datetime | None = None) -> tuple["ApiKey", str]:
        """Create a key; returns (row, raw key). The raw key is shown once and never again."""
        prefix = secrets.token_hex(4)
        raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            user=user, name=name, prefix=prefix, key_hash=hash_api_key(raw), expires_at=expires_at
        )
        return key, raw
