"""The audit log: administrative changes recorded as AuditEvent rows, from model signals, whoever makes them.

The admin's LogEntry records the admin's own edits (what was saved, by whom); it misses group membership and
permission changes made elsewhere (a shell, a command, the sign-in provider's group claim) and says nothing of
what a user's flags were before. These receivers record each such change with the user acting in the request
(AuditActorMiddleware), or none outside a request.
"""

from __future__ import annotations

import contextvars
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from accounts.models import ApiKey
from chatsite.middleware import HybridMiddleware
from teams.models import AuditEvent, GroupPolicy

User = get_user_model()

acting_request: contextvars.ContextVar[Any] = contextvars.ContextVar("teams_acting_request", default=None)

WATCHED_FLAGS = ("is_active", "is_staff", "is_superuser")


class AuditActorMiddleware(HybridMiddleware):
    """Remembers the request, so that a change recorded during it names who made it. Reads nothing (the user is
    loaded only when a change is recorded); after AuthenticationMiddleware."""

    def process_request(self, request):
        acting_request.set(request)
        return None

    def process_response(self, request, response):
        acting_request.set(None)  # a thread that serves the next request (or a test) starts with nobody acting
        return response


def _actor() -> Any:
    request = acting_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


def record(action: str, *, target: str, detail: str = "", target_user_id: int | None = None) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=_actor(), action=action, target=target[:200], detail=detail, target_user_id=target_user_id
    )


def _names(model: Any, pks: set[int] | None) -> str:
    if not pks:
        return ""
    field = "codename" if model is Permission else ("username" if model is User else "name")
    return ", ".join(sorted(model.objects.filter(pk__in=pks).values_list(field, flat=True)))


_VERBS = {"post_add": "added", "post_remove": "removed", "pre_clear": "cleared"}


@receiver(m2m_changed, sender=User.groups.through)
def _groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action not in _VERBS:
        return
    if action == "pre_clear":  # the set is about to go: name it while it exists
        pk_set = set(
            instance.user_set.values_list("pk", flat=True) if reverse else instance.groups.values_list("pk", flat=True)
        )
    if not pk_set:
        return  # nothing changed (an add of members already in, a clear of an empty set)
    verb = _VERBS[action]
    if reverse:  # group.user_set changed: one event per user
        for user in User.objects.filter(pk__in=pk_set or ()):
            record(AuditEvent.Action.GROUP_MEMBERS_CHANGED, target=f"group {instance.name}",
                   detail=f"{verb}: {user.get_username()}", target_user_id=user.pk)
    else:
        record(AuditEvent.Action.GROUP_MEMBERS_CHANGED, target=f"user {instance.get_username()}",
               detail=f"{verb}: {_names(Group, pk_set)}", target_user_id=instance.pk)


@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove") or reverse or not pk_set:
        return
    if isinstance(instance, Group):
        target, target_user_id = f"group {instance.name}", None
    else:
        target, target_user_id = f"user {instance.get_username()}", instance.pk
    record(AuditEvent.Action.PERMISSIONS_CHANGED, target=target,
           detail=f"{_VERBS[action]}: {_names(Permission, pk_set)}", target_user_id=target_user_id)


@receiver(pre_save, sender=User)
def _remember_flags(sender, instance, update_fields=None, **kwargs) -> None:
    if instance.pk is None or (update_fields is not None and not set(update_fields) & set(WATCHED_FLAGS)):
        return  # a new user, or a save of other fields (a login's last_login): nothing to compare
    instance._audit_flags_before = User.objects.filter(pk=instance.pk).values(*WATCHED_FLAGS).first()


@receiver(post_save, sender=User)
def _flags_changed(sender, instance, created, **kwargs) -> None:
    before = instance.__dict__.pop("_audit_flags_before", None)
    if created or not before:
        return
    target = f"user {instance.get_username()}"
    if before["is_active"] != instance.is_active:
        action = AuditEvent.Action.USER_REACTIVATED if instance.is_active else AuditEvent.Action.USER_DEACTIVATED
        record(action, target=target, target_user_id=instance.pk)
    roles = [f"{flag}: {before[flag]} -> {getattr(instance, flag)}" for flag in ("is_staff", "is_superuser")
             if before[flag] != getattr(instance, flag)]
    if roles:
        record(AuditEvent.Action.ROLE_CHANGED, target=target, detail="; ".join(roles), target_user_id=instance.pk)


@receiver(pre_save, sender=ApiKey)
def _remember_revocation(sender, instance, **kwargs) -> None:
    if instance.pk is not None and instance.revoked_at is not None:
        instance._audit_was_revoked = ApiKey.objects.filter(pk=instance.pk, revoked_at__isnull=False).exists()


@receiver(post_save, sender=ApiKey)
def _key_revoked(sender, instance, created, **kwargs) -> None:
    was_revoked = instance.__dict__.pop("_audit_was_revoked", None)
    if was_revoked is False:
        record(AuditEvent.Action.KEY_REVOKED, target=f"API key {instance.prefix} ({instance.name})",
               target_user_id=instance.user_id)


@receiver(post_save, sender=GroupPolicy)
def _policy_changed(sender, instance, created, **kwargs) -> None:
    policy = instance
    detail = (
        f"models: {', '.join(policy.allowed_models) or 'all'}; budget: {policy.daily_token_budget or 'no limit'}; "
        f"features: {', '.join(sorted(policy.features())) or 'none'}"
    )
    record(AuditEvent.Action.POLICY_CHANGED, target=f"group {policy.group.name}", detail=detail)
