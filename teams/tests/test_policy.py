"""policy_for: the site's defaults for a user in no group, the most generous of several groups, the override, and
its cost (one query per request)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from teams.models import Feature, UserPolicy
from teams.policy import forget, policy_for

pytestmark = pytest.mark.django_db


def test_a_user_in_no_group_gets_the_site_defaults(user, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 1234
    settings.CHAT_DEFAULT_FEATURES = ["share_links", "api_keys"]
    policy = policy_for(user)
    assert policy.models is None and policy.allows_model("anything")
    assert policy.daily_token_budget == 1234
    assert policy.allows(Feature.SHARE_LINKS) and policy.allows(Feature.API_KEYS)
    assert not policy.allows(Feature.FILE_UPLOADS) and not policy.allows(Feature.SERVER_TOOLS)


def test_anonymous_users_get_the_site_defaults(settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 7
    assert policy_for(AnonymousUser()).daily_token_budget == 7


def test_one_group_says_what_its_members_may_use(user, make_group):
    make_group("interns", members=[user], models=["small"], budget=500, share_links=False, server_tools=False)
    policy = policy_for(user)
    assert policy.models == frozenset({"small"})
    assert policy.allows_model("small") and not policy.allows_model("large")
    assert policy.daily_token_budget == 500
    assert not policy.allows(Feature.SHARE_LINKS) and not policy.allows(Feature.SERVER_TOOLS)
    assert policy.allows(Feature.FILE_UPLOADS) and policy.allows(Feature.API_KEYS)


def test_several_groups_give_the_most_generous_of_each(user, make_group):
    make_group("a", members=[user], models=["small"], budget=500, share_links=False, api_keys=False)
    make_group("b", members=[user], models=["medium"], budget=2000, share_links=True, api_keys=False)
    policy = policy_for(user)
    assert policy.models == frozenset({"small", "medium"})
    assert policy.daily_token_budget == 2000
    assert policy.allows(Feature.SHARE_LINKS) and not policy.allows(Feature.API_KEYS)


def test_a_group_listing_no_model_allows_every_model_and_no_limit_is_the_highest_budget(user, make_group):
    make_group("a", members=[user], models=["small"], budget=500)
    make_group("b", members=[user], models=[], budget=0)
    policy = policy_for(user)
    assert policy.models is None and policy.daily_token_budget == 0


def test_a_group_without_a_policy_gives_the_site_defaults(user, settings, db):
    from django.contrib.auth.models import Group

    settings.CHAT_DAILY_TOKEN_QUOTA = 42
    Group.objects.create(name="plain").user_set.add(user)
    assert policy_for(user).daily_token_budget == 42 and policy_for(user).models is None


def test_the_override_replaces_the_groups_budget(user, make_group):
    make_group("a", members=[user], models=["small"], budget=500)
    UserPolicy.objects.create(user=user, daily_token_budget=9000)
    policy = policy_for(user)
    assert policy.daily_token_budget == 9000 and policy.models == frozenset({"small"})


def test_read_once_per_user_object_in_one_query(user, make_group):
    make_group("a", members=[user], models=["small"], budget=500)
    make_group("b", members=[user], models=["medium"], budget=700)
    UserPolicy.objects.create(user=user, daily_token_budget=9000)
    with CaptureQueriesContext(connection) as queries:
        policy_for(user)
        policy_for(user)
    assert len(queries) == 1  # the user's row, joined to their override and to their groups with their policies
    forget(user)
    with CaptureQueriesContext(connection) as queries:
        policy = policy_for(user)
    assert len(queries) == 1
    assert policy.models == frozenset({"small", "medium"}) and policy.daily_token_budget == 9000


def test_the_override_holds_for_a_user_in_no_group(user, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 100
    UserPolicy.objects.create(user=user, daily_token_budget=9000)
    assert policy_for(user).daily_token_budget == 9000 and policy_for(user).models is None


def test_web_search_and_mcp_tools_count_only_with_server_tools_in_the_same_group(user, make_group):
    make_group("no-web", members=[user], web_search=False)
    policy = policy_for(user)
    assert policy.allows(Feature.SERVER_TOOLS) and policy.allows(Feature.MCP_TOOLS)
    assert not policy.allows(Feature.WEB_SEARCH)
    # A group allowing web search but no server tools at all allows neither: the first group still refuses it.
    make_group("plain-answers", members=[user], server_tools=False, web_search=True)
    forget(user)
    assert not policy_for(user).allows(Feature.WEB_SEARCH)
    make_group("researchers", members=[user], mcp_tools=False)
    forget(user)
    policy = policy_for(user)
    assert policy.allows(Feature.WEB_SEARCH) and policy.allows(Feature.MCP_TOOLS)


def test_the_defaults_allow_the_kinds_of_server_tool_only_with_server_tools(user, settings):
    settings.CHAT_DEFAULT_FEATURES = ["web_search", "mcp_tools"]
    assert not policy_for(user).allows(Feature.WEB_SEARCH) and not policy_for(user).allows(Feature.MCP_TOOLS)
    settings.CHAT_DEFAULT_FEATURES = ["server_tools", "mcp_tools"]
    policy = policy_for(user)
    assert policy.allows(Feature.MCP_TOOLS) and not policy.allows(Feature.WEB_SEARCH)
