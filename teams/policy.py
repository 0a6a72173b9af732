"""What a user may use: the models, the daily token budget and the features their groups allow.

Everything that offers a model, admits an answer against the budget or opens a feature asks `policy_for(user)`.
A user in no group gets the site's defaults (every model, CHAT_DAILY_TOKEN_QUOTA, CHAT_DEFAULT_FEATURES). In
several groups, the most generous: the union of their models (a group with none listed allows every model), the
highest budget (0, no limit, is the highest), every feature one of them allows. A per-user override replaces the
budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from chatsite.prebuilt import per_thread
from teams.models import Feature, GroupPolicy

__all__ = ["Feature", "Policy", "forget", "policy_for", "site_policy"]

CACHE_ATTRIBUTE = "_teams_policy"


@dataclass(frozen=True)
class Policy:
    models: frozenset[str] | None  # None: every model the site offers
    daily_token_budget: int  # 0: no limit
    features: frozenset[str]

    def allows_model(self, name: str) -> bool:
        return self.models is None or name in self.models

    def allows(self, feature: Feature | str) -> bool:
        return str(feature) in self.features


SERVER_TOOL_KINDS = frozenset({Feature.WEB_SEARCH.value, Feature.MCP_TOOLS.value})


def _allowed(switches: frozenset[str]) -> frozenset[str]:
    """What a set of switches allows: the kinds of server tool only with server tools themselves."""
    return switches if Feature.SERVER_TOOLS.value in switches else switches - SERVER_TOOL_KINDS


def site_policy() -> Policy:
    """The defaults, for a user in no group (and for a group whose policy is not set)."""
    return Policy(
        models=None,
        daily_token_budget=settings.CHAT_DAILY_TOKEN_QUOTA,
        features=_allowed(frozenset(settings.CHAT_DEFAULT_FEATURES)),
    )


def _of_group(policy: GroupPolicy) -> Policy:
    return Policy(
        models=frozenset(policy.allowed_models) if policy.allowed_models else None,
        daily_token_budget=policy.daily_token_budget,
        features=_allowed(policy.features()),
    )


def _most_generous(policies: list[Policy]) -> Policy:
    models: frozenset[str] | None = frozenset()
    for policy in policies:
        models = None if models is None or policy.models is None else models | policy.models
    budgets = [policy.daily_token_budget for policy in policies]
    return Policy(
        models=models,
        daily_token_budget=0 if 0 in budgets else max(budgets),
        features=frozenset().union(*(policy.features for policy in policies)),
    )


@dataclass(frozen=True)
class _Stored:
    """What the database says of a user: their groups' policies (None: a group without one) and their override."""

    groups: tuple[Policy | None, ...]
    budget_override: int | None


def policy_for(user: Any) -> Policy:
    """The user's policy. The database is read once per user object (a request's user: one query per request);
    the site's defaults are read from the settings each time."""
    if not getattr(user, "is_authenticated", False):
        return site_policy()
    stored = user.__dict__.get(CACHE_ATTRIBUTE)
    if stored is None:
        stored = user.__dict__[CACHE_ATTRIBUTE] = _read(user.pk)
    policy = _most_generous([group or site_policy() for group in stored.groups]) if stored.groups else site_policy()
    if stored.budget_override is not None:
        policy = Policy(models=policy.models, daily_token_budget=stored.budget_override, features=policy.features)
    return policy


_GROUP_POLICY_FIELDS = ("allowed_models", "daily_token_budget", *Feature.values)


@per_thread
def _rows() -> QuerySet:
    """Each user's row, outer-joined to their override and to each of their groups with its policy: one row per group
    (one row, its group columns empty, for a user in no group). Built once per thread and cloned by each read:
    resolving its joins costs more CPU than running it."""
    return (
        get_user_model().objects
        .values_list(
            "policy_override__daily_token_budget", "groups__id", "groups__policy__group_id",
            *(f"groups__policy__{name}" for name in _GROUP_POLICY_FIELDS),
        )
        .order_by("groups__id")
    )


def _read(user_id: int) -> _Stored:
    """What the database says of one user, in one query."""
    override, groups = None, []
    for budget_override, group_id, policy_group_id, *fields in _rows().filter(pk=user_id):
        override = budget_override
        if group_id is not None:
            groups.append(
                _of_group(GroupPolicy(**dict(zip(_GROUP_POLICY_FIELDS, fields, strict=True))))
                if policy_group_id is not None else None
            )
    return _Stored(tuple(groups), override)


def forget(user: Any) -> None:
    """Drop the cached policy of this user object (after changing its groups or override in the same request)."""
    user.__dict__.pop(CACHE_ATTRIBUTE, None)

