"""A group's daily token budget holds under parallel requests across two uvicorn workers, per member and per group:
the budget (teams.policy) is what the usage ledger's lock admits against (conversations.services.quota)."""

import threading

import httpx2 as httpx
import pytest

from accounts.models import ApiKey
from conversations.models import Turn
from conversations.services import conversation_create
from teams.models import GroupPolicy
from tests.servers import upstream_env
from tests.support import assert_error_shape, requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)


def member_of(user, name: str, budget: int) -> None:
    from django.contrib.auth.models import Group

    group = Group.objects.create(name=name)
    GroupPolicy.objects.create(group=group, daily_token_budget=budget)
    group.user_set.add(user)


def test_each_groups_budget_holds_under_twenty_parallel_requests_over_two_workers(
    uvicorn_server, fake_upstream, user, other_user, redis_url
):
    """alice's group gives 200 tokens a day, bob's 80; the site has no quota. 20 messages at once (10 each) over two
    workers: 40 tokens are held per answer (the message and a whole answer), so 5 of alice's and 2 of bob's are
    admitted, and neither spends more than their group's budget."""
    requires_postgresql("server processes sharing the test database")
    member_of(user, "analysts", 200)
    member_of(other_user, "interns", 80)
    url, prefix = redis_url
    fake_upstream.behaviour.ttft = 6.0  # the answers overlap: all 20 are admitted (or refused) before any ends
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_DAILY_TOKEN_QUOTA": "0", "CHAT_MAX_ANSWER_TOKENS": "40", "CHAT_THROTTLE_RATE": "1000/min",
           "OPENAI_TIMEOUT": "30"}
    server = uvicorn_server(workers=2, env=env)
    keys = {member: ApiKey.generate(user=member, name="budget test")[1] for member in (user, other_user)}
    requests, owners = [], []
    for i in range(20):
        member = user if i % 2 else other_user
        conversation = conversation_create(owner=member)
        requests.append((server.base_url, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"}))
        owners.append(member)
    responses = post_all_at_once_with_keys(requests, [keys[member] for member in owners])

    by_member: dict[str, list[httpx.Response]] = {user.username: [], other_user.username: []}
    for member, response in zip(owners, responses, strict=True):
        by_member[member.username].append(response)
    for member, budget, admits in ((user, 200, 5), (other_user, 80, 2)):
        admitted = [r for r in by_member[member.username] if r.status_code == 201]
        for refused in (r for r in by_member[member.username] if r.status_code != 201):
            assert_error_shape(refused, 429, "quota_exceeded")
        assert len(admitted) == admits, [r.status_code for r in by_member[member.username]]
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {keys[member]}"}) as client:
            usage = client.get("/api/v1/usage/").json()
        spent = sum(r.json()["assistant_turn"]["prompt_tokens"] + r.json()["assistant_turn"]["completion_tokens"]
                    for r in admitted)
        assert usage["quota"] == budget and usage["tokens_today"] == spent <= budget
        assert Turn.objects.filter(role="user", conversation__owner=member).count() == admits
    assert len(fake_upstream.chat_requests) == 7


def post_all_at_once_with_keys(requests: list[tuple[str, str, dict]], keys: list[str]) -> list[httpx.Response]:
    """Send every (base_url, path, json) request from its own thread with its own key, released together by a
    barrier (test_concurrency.post_all_at_once, one key per request)."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def send(i, base_url, path, body):
        with httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {keys[i]}"}) as client:
            barrier.wait()
            try:
                responses[i] = client.post(path, json=body)
            except httpx.HTTPError as exc:
                responses[i] = exc

    threads = [threading.Thread(target=send, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return responses
