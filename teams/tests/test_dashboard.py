"""The admin's usage page: its figures equal the usage ledger's for a seeded month (per day, group and user, and what
each user's own usage reads), its CSV carries the same rows, and it loads in a fixed number of queries at 1,000
users and 100,000 turns."""

import csv
import io
from datetime import datetime, time, timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from conversations.admin_views import usage_summary
from conversations.models import Conversation, DailyUsage, Turn
from conversations.services.quota import usage_add
from conversations.tests.admin_support import add_exchange, make_reviewer

pytestmark = pytest.mark.django_db

DAYS = 30


def at(day, hour=12):
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def seeded_month(make_user):
    """Four users over the last 30 days: alice and bob in "analysts", bob also in "interns", carol in "interns",
    dave in no group. Each answer is stored as the service stores it: the turns, and its tokens on the ledger."""
    today = timezone.localdate()
    analysts, interns = Group.objects.create(name="analysts"), Group.objects.create(name="interns")
    users = {name: make_user(name) for name in ("alice", "bob", "carol", "dave")}
    analysts.user_set.add(users["alice"], users["bob"])
    interns.user_set.add(users["bob"], users["carol"])
    expected: dict[str, dict] = {name: {"tokens": 0, "answers": 0, "days": {}} for name in users}
    for offset in range(DAYS):
        day = today - timedelta(days=offset)
        for index, (name, user) in enumerate(users.items()):
            if (offset + index) % 3 == 0:
                continue  # not every user every day
            chat = Conversation.objects.create(owner=user, title=f"{name} {offset}")
            for answer in range(1 + offset % 2):
                prompt, completion = 10 * (index + 1) + offset, answer + 3
                failed = (offset + answer) % 7 == 0
                add_exchange(chat, "q", "" if failed else "a", prompt_tokens=prompt, completion_tokens=completion,
                             status=Turn.Status.FAILED if failed else Turn.Status.COMPLETE, at=at(day))
                usage_add(user.pk, day, prompt_tokens=prompt, completion_tokens=completion)
                record = expected[name]
                record["tokens"] += prompt + completion
                record["answers"] += 1
                record["days"][day] = record["days"].get(day, 0) + prompt + completion
    # Out of the range: counted nowhere.
    old = today - timedelta(days=DAYS + 1)
    add_exchange(Conversation.objects.create(owner=users["dave"]), "q", "a", prompt_tokens=999, at=at(old))
    usage_add(users["dave"].pk, old, prompt_tokens=999, completion_tokens=0)
    return users, expected


def test_the_figures_equal_the_ledgers_for_a_seeded_month(seeded_month):
    users, expected = seeded_month
    summary = usage_summary()
    assert summary["days"] == DAYS
    ledger = DailyUsage.objects.filter(day__gte=summary["since"])
    for row in summary["overall"]:
        on_day = ledger.filter(day=row["day"])
        assert row["tokens"] == sum(usage.total_tokens for usage in on_day)
        assert row["answers"] == sum(usage.answers for usage in on_day)
        assert row["active_users"] == on_day.count()
        assert row["tokens"] == sum(record["days"].get(row["day"], 0) for record in expected.values())
        turns = Turn.objects.filter(created_at__date=row["day"])
        assert row["messages"] == turns.filter(role=Turn.Role.USER).count()
        assert row["failed"] == turns.filter(status=Turn.Status.FAILED).count()
    assert summary["overall_tokens"] == sum(record["tokens"] for record in expected.values())

    per_user = {row["username"]: row for row in summary["per_user"]}
    for name, record in expected.items():
        assert (per_user[name]["tokens"], per_user[name]["answers"]) == (record["tokens"], record["answers"])

    per_group = {row["group"]: row for row in summary["per_group"]}
    assert per_group["analysts"]["tokens"] == expected["alice"]["tokens"] + expected["bob"]["tokens"]
    assert per_group["interns"]["tokens"] == expected["bob"]["tokens"] + expected["carol"]["tokens"]
    assert per_group[None]["tokens"] == expected["dave"]["tokens"]
    assert (per_group["analysts"]["users"], per_group["interns"]["users"], per_group[None]["users"]) == (2, 2, 1)

    per_model = {row["model"]: row for row in summary["per_model"]}
    assert per_model["fake-model"]["answers"] == sum(record["answers"] for record in expected.values())
    assert per_model["fake-model"]["tokens"] == summary["overall_tokens"]  # no chat was deleted in this month


def test_each_user_reads_the_same_numbers_on_their_own_usage(seeded_month, client):
    users, expected = seeded_month
    for name in ("alice", "dave"):
        client.force_login(users[name])
        body = client.get("/api/v1/usage/?days=30").json()
        assert sum(day["total_tokens"] for day in body["days"]) == expected[name]["tokens"]
        page = client.get(reverse("teams:usage")).context
        assert page["total_tokens"] == expected[name]["tokens"] and page["total_answers"] == expected[name]["answers"]


def test_a_chosen_range_and_the_csv_carry_the_same_rows(seeded_month, client, make_user):
    users, expected = seeded_month
    client.force_login(make_reviewer(make_user))
    today = timezone.localdate()
    since, until = today - timedelta(days=6), today - timedelta(days=2)
    response = client.get(reverse("admin_usage"), {"since": since.isoformat(), "until": until.isoformat()})
    assert response.status_code == 200 and response.context["days"] == 5
    download = client.get(reverse("admin_usage"), {"since": since.isoformat(), "until": until.isoformat(),
                                                    "csv": "days"})
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [row["day"] for row in rows] == [(since + timedelta(days=n)).isoformat() for n in range(5)]
    assert [int(row["tokens"]) for row in rows] == [day["tokens"] for day in response.context["overall"]]
    users_csv = list(csv.DictReader(io.StringIO(client.get(
        reverse("admin_usage"), {"csv": "users"}).content.decode())))
    assert {row["username"]: int(row["tokens"]) for row in users_csv} == {
        name: record["tokens"] for name, record in expected.items()
    }
    groups_csv = client.get(reverse("admin_usage"), {"csv": "groups"}).content.decode()
    assert groups_csv.splitlines()[0] == "group,users,answers,tokens"
    assert client.get(reverse("admin_usage"), {"csv": "secrets"}).status_code == 404
    backwards = {"since": until.isoformat(), "until": since.isoformat()}
    assert client.get(reverse("admin_usage"), backwards).status_code == 400
    assert client.get(reverse("admin_usage"), {"since": "2020-01-01"}).status_code == 400  # more than 366 days


def test_the_page_loads_in_a_fixed_number_of_queries_at_1000_users_and_100000_turns(client, make_user):
    today = timezone.localdate()
    team = Group.objects.create(name="everyone")
    users = User.objects.bulk_create([User(username=f"user{n:04d}", password="!") for n in range(1000)])
    team.user_set.through.objects.bulk_create(
        [team.user_set.through(user_id=user.pk, group_id=team.pk) for user in users[::2]]
    )
    chats = Conversation.objects.bulk_create([Conversation(owner=user, title="chat") for user in users])
    turns = []
    for number, chat in enumerate(chats):
        for position in range(100):  # 100 turns a chat, spread over the month: 100,000 turns
            role = Turn.Role.USER if position % 2 == 0 else Turn.Role.ASSISTANT
            turns.append(Turn(
                conversation=chat, position=1, role=role, content="x", model="fake-model" if number % 3 else "other",
                status=Turn.Status.FAILED if role == Turn.Role.ASSISTANT and position % 9 == 0 else "complete",
                prompt_tokens=5, completion_tokens=2, created_at=at(today - timedelta(days=position % DAYS)),
            ))
    Turn.objects.bulk_create(turns, batch_size=5000)
    DailyUsage.objects.bulk_create([
        DailyUsage(user=user, day=today - timedelta(days=offset), prompt_tokens=100, completion_tokens=40, answers=2)
        for user in users for offset in range(DAYS)
    ], batch_size=5000)
    assert Turn.objects.count() == 100_000
    client.force_login(make_reviewer(make_user))
    client.get(reverse("admin:index"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin_usage"))
    assert response.status_code == 200
    # session, user, permissions (2), then the summary's 9: the ledger per day, the turns per day, per model, per
    # group, in no group, the top users, their days, statuses, feedback.
    assert len(queries) == 13, [query["sql"][:120] for query in queries]
    assert response.context["overall_tokens"] == 1000 * DAYS * 140
    assert {row["group"]: row["users"] for row in response.context["per_group"]} == {"everyone": 500, None: 500}
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("admin_usage"), {"csv": "users"}).status_code == 200
    assert len(queries) == 13
