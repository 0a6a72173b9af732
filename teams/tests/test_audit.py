"""The audit log: group membership and permission changes, staff flags, deactivation, key revocations and group
policies, with who made them (in the admin or anywhere else)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey
from teams.models import AuditEvent, GroupPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user):
    root = make_user("root", is_staff=True, is_superuser=True)
    page = Client()
    page.force_login(root)
    return page, root


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("pk").values_list("target", "detail"))


def test_changes_outside_a_request_are_logged_with_no_actor(user):
    group = Group.objects.create(name="analysts")
    user.groups.add(group)
    group.user_set.remove(user)
    group.permissions.add(Permission.objects.get(codename="view_conversation"))
    user.user_permissions.add(Permission.objects.get(codename="view_turn"))
    user.is_staff = True
    user.save()
    user.is_active = False
    user.save()
    user.is_active = True
    user.save(update_fields=["is_active"])
    user.save(update_fields=["last_login"])  # nothing watched changed: nothing logged
    assert events(AuditEvent.Action.GROUP_MEMBERS_CHANGED) == [
        ("user alice", "added: analysts"), ("group analysts", "removed: alice"),
    ]
    assert events(AuditEvent.Action.PERMISSIONS_CHANGED) == [
        ("group analysts", "added: view_conversation"), ("user alice", "added: view_turn"),
    ]
    assert events(AuditEvent.Action.ROLE_CHANGED) == [("user alice", "is_staff: False -> True")]
    assert events(AuditEvent.Action.USER_DEACTIVATED) == [("user alice", "")]
    assert events(AuditEvent.Action.USER_REACTIVATED) == [("user alice", "")]
    assert AuditEvent.objects.count() == 7
    assert not AuditEvent.objects.filter(actor__isnull=False).exists()
    assert set(AuditEvent.objects.exclude(target__startswith="group").values_list("target_user", flat=True)) == {
        user.pk
    }


def test_admin_edits_name_who_made_them(admin_client, user):
    page, root = admin_client
    response = page.post(reverse("admin:auth_group_add"), {
        "name": "interns", "members": [user.pk],
        "policy-TOTAL_FORMS": "1", "policy-INITIAL_FORMS": "0", "policy-MIN_NUM_FORMS": "0",
        "policy-MAX_NUM_FORMS": "1", "policy-0-allowed_models": "small\nmedium\n\nsmall",
        "policy-0-daily_token_budget": "5000", "policy-0-share_links": "on", "policy-0-file_uploads": "on",
        "policy-0-api_keys": "on", "policy-0-server_tools": "on", "policy-0-web_search": "on",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    group = Group.objects.get(name="interns")
    assert list(group.user_set.all()) == [user]
    policy = GroupPolicy.objects.get(group=group)
    assert policy.allowed_models == ["medium", "small"] and policy.daily_token_budget == 5000
    assert not policy.temporary_chats and policy.server_tools and policy.web_search and not policy.mcp_tools
    membership = AuditEvent.objects.get(action=AuditEvent.Action.GROUP_MEMBERS_CHANGED)
    assert (membership.actor, membership.target, membership.detail) == (root, "group interns", "added: alice")
    logged = AuditEvent.objects.get(action=AuditEvent.Action.POLICY_CHANGED)
    assert logged.actor == root and logged.detail.endswith(
        "features: api_keys, file_uploads, server_tools, share_links, web_search"
    )

    key, _ = ApiKey.generate(user=user, name="laptop")
    page.post(reverse("admin:accounts_apikey_changelist"),
              {"action": "revoke_selected", "_selected_action": [key.pk]})
    revoked = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVOKED)
    assert (revoked.actor, revoked.target_user) == (root, user) and key.prefix in revoked.target
    # The group's page lists its members, and the log is read-only.
    change_page = page.get(reverse("admin:auth_group_change", args=[group.pk])).content.decode()
    assert 'selected>alice</option>' in change_page
    assert 'id="id_policy-0-web_search" checked>' in change_page and 'id="id_policy-0-mcp_tools">' in change_page
    assert page.get(reverse("admin:teams_auditevent_changelist")).status_code == 200
    assert page.get(reverse("admin:teams_auditevent_add")).status_code == 403
    assert page.post(reverse("admin:teams_auditevent_delete", args=[revoked.pk])).status_code == 403


def test_an_owner_revoking_their_own_key_is_logged(authenticated_client, user):
    key, _ = ApiKey.generate(user=user, name="script")
    authenticated_client.post(reverse("api_key_revoke", args=[key.pk]))
    authenticated_client.post(reverse("api_key_revoke", args=[key.pk]))  # already revoked: no second event
    revoked = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVOKED)
    assert revoked.actor == user and revoked.target_user == user


def test_clearing_and_re_adding_log_only_real_changes(user):
    group = Group.objects.create(name="analysts")
    user.groups.add(group)
    user.groups.add(group)  # already a member: nothing changes
    user.groups.clear()
    user.groups.clear()  # already none: nothing changes
    assert events(AuditEvent.Action.GROUP_MEMBERS_CHANGED) == [
        ("user alice", "added: analysts"), ("user alice", "cleared: analysts"),
    ]
