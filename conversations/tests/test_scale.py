"""Costs that follow one page, not the user's history nor the site: search through its index, paged turns, the
capped detail, the sidebar, the streamed export and the batched account deletion (issue: a million turns)."""

import io
import json
import re
import zipfile

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chatsite.task_worker import run_queued_tasks
from conversations import account_data, organizing, search, tasks
from conversations import admin as review_admin
from conversations.models import Conversation, Feedback, Turn
from conversations.selectors import conversation_list
from conversations.services import conversation_create
from conversations.tests.factories import add_turns, conversation_with_history
from knowledge.tests.support import indexed_base

pytestmark = pytest.mark.django_db

# The sync test client collects a streamed response in one go (Django warns about it); uvicorn streams it.
sync_stream_warning = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")


def found(user, text):
    return {c.title for c in conversation_list(user=user, search=text)}


# --- Search through the index ------------------------------------------------------------------------------------


def test_the_search_index_exists_on_this_database():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'turn_content_trgm_idx'")
            assert "gin_trgm_ops" in cursor.fetchone()[0]
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'attachment_text_trgm_idx'")
            assert "gin_trgm_ops" in cursor.fetchone()[0]
        else:
            # Django rebuilds a SQLite table for some schema changes, dropping its triggers: after every migration,
            # the FTS table's triggers must still be there.
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'turn_fts_%'")
            assert {row[0] for row in cursor.fetchall()} == {"turn_fts_insert", "turn_fts_update", "turn_fts_delete"}
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'attachment_fts_%'")
            assert {row[0] for row in cursor.fetchall()} == {
                "attachment_fts_insert", "attachment_fts_update", "attachment_fts_delete"
            }


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers (PostgreSQL's guards are foreign keys)")
def test_every_sqlite_trigger_is_there_after_all_the_migrations():
    """Each migration that rebuilds the turn or conversation table on SQLite drops that table's triggers: the guards
    of migration 0004 and the full-text triggers of 0017 must all be made again (0007's keeping_sqlite_triggers).
    Two merged migrations once lost them (the conversation guards, then the turns' full-text triggers)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "turn_parent_same_conversation_insert", "turn_parent_same_conversation_update",
        "conversation_current_turn_same_conversation_insert", "conversation_current_turn_same_conversation_update",
        "turn_fts_insert", "turn_fts_update", "turn_fts_delete",
        "attachment_fts_insert", "attachment_fts_update", "attachment_fts_delete",
        "knowledge_passage_fts_insert", "knowledge_passage_fts_update", "knowledge_passage_fts_delete",
    }


@pytest.fixture(params=["rare", "common"])
def text_frequency(request, monkeypatch):
    """Both ways a search reads the index on PostgreSQL: a rare text's conversations listed from it, or (no text is
    rare when RARE_TEXT_TURNS is 0) the walk over the user's conversations."""
    if request.param == "common":
        monkeypatch.setattr(search, "RARE_TEXT_TURNS", 0)
    return request.param


def test_search_follows_turns_written_edited_and_deleted(user, other_user, text_frequency):
    chat = conversation_create(owner=user, title="Plans")
    turn = add_turns(chat, ("user", "Where is the Xylophone museum?"))
    add_turns(conversation_create(owner=other_user, title="Theirs"), ("user", "xylophone too"))
    assert found(user, "XYLOPHONE") == {"Plans"}
    assert found(user, "lophon") == {"Plans"}  # a substring, as icontains
    Turn.objects.filter(pk=turn.pk).update(content="Where is the marimba museum?")
    assert found(user, "xylophone") == set()
    assert found(user, "marimba museum") == {"Plans"}
    Turn.objects.filter(pk=turn.pk).delete()
    assert found(user, "marimba") == set()


@pytest.mark.parametrize("text", ["ok", 'say "hi"', "a AND b", "x*", "NEAR(a b)", "'quoted'", "-minus", "c++"])
def test_search_takes_any_text_as_plain_text(user, text, text_frequency):
    chat = conversation_create(owner=user, title="Untitled")
    add_turns(chat, ("user", f"before {text} after"))
    assert found(user, text) == {"Untitled"}
    assert found(user, text + "zzz") == set()


def test_a_search_page_of_the_api_is_not_counted_and_says_whether_more_follow(key_client, user):
    for number in range(5):
        add_turns(conversation_create(owner=user, title=f"chat {number}"), ("user", "about sourdough"))
    conversation_create(owner=user, title="other")
    first = key_client.get("/api/v1/conversations/", {"search": "sourdough", "page_size": 2}).json()
    assert first["count"] is None and len(first["results"]) == 2 and first["previous"] is None
    second = key_client.get(first["next"]).json()
    third = key_client.get(second["next"]).json()
    assert len(third["results"]) == 1 and third["next"] is None and third["previous"]
    titles = [c["title"] for page in (first, second, third) for c in page["results"]]
    assert sorted(titles) == [f"chat {n}" for n in range(5)]
    past = key_client.get("/api/v1/conversations/", {"search": "sourdough", "page_size": 2, "page": 4})
    assert past.status_code == 404 and "error" in past.json()
    far = key_client.get("/api/v1/conversations/", {"search": "sourdough", "page": "487299340048435960086528"})
    assert far.status_code == 404 and "error" in far.json()
    assert key_client.get("/api/v1/conversations/").json()["count"] == 6  # the plain list is still counted


@pytest.mark.django_db(transaction=True)  # the indexing task runs on its own connection
@pytest.mark.parametrize(("chats", "documents"), [(2, 1), (120, 8)])
def test_search_query_count_is_flat_and_runs_no_count(key_client, user, other_user, chats, documents):
    indexed_base(user, {f"doc{n}.txt": f"Notes {n} on sourdough starters.".encode() for n in range(documents)})
    indexed_base(other_user, {"theirs.txt": b"their sourdough"})
    for number in range(chats):
        if number % 2:  # found by its title only: the files are searched for its snippet too
            add_turns(conversation_create(owner=user, title=f"sourdough {number}"), ("user", "about bread"))
        else:
            add_turns(conversation_create(owner=user, title=f"chat {number}"), ("user", "about sourdough"))
        add_turns(conversation_create(owner=other_user, title="theirs"), ("user", "sourdough"))
    key_client.get("/api/v1/conversations/")
    with CaptureQueriesContext(connection) as queries:
        response = key_client.get("/api/v1/conversations/", {"search": "sourdough"})
    results = response.json()["results"]
    assert len(results) == min(chats, 50)
    assert all((r["snippet"] is None) == r["title"].startswith("sourdough") for r in results)
    # 1 the API key (with its user), (PostgreSQL: the index asked whether the text is rare), 2 the page of
    # matching chats (one more row than a page, for `next`); the snippets: PostgreSQL 3 the first hit of each chat
    # of the page; SQLite 3 the newest hit of each and 4 their text; then 5 (4) the files of the chats still without
    # one; 6 (5) the user's knowledge documents with the word (the first passage of each of the newest five).
    assert len(queries) == 6
    assert len(response.json()["documents"]) == min(documents, 5)
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


# --- Turns and detail, paged in SQL -------------------------------------------------------------------------------


@pytest.fixture
def long_chat(user):
    return conversation_with_history(user, 260, title="Long")


def test_turns_pages_follow_the_branch_in_order(key_client, long_chat):
    url = f"/api/v1/conversations/{long_chat.pk}/turns/"
    page = key_client.get(url, {"page_size": 100}).json()
    assert page["count"] == 260
    assert [t["position"] for t in page["results"]] == list(range(1, 101))
    page = key_client.get(page["next"]).json()
    assert [t["position"] for t in page["results"]] == list(range(101, 201))
    page = key_client.get(page["next"]).json()
    assert [t["content"] for t in page["results"]] == [f"turn {n}" for n in range(201, 261)]
    assert page["next"] is None
    assert key_client.get(url, {"page_size": 100, "page": 4}).status_code == 404
    # Through another version: a second turn 30, whose branch ends with it.
    version = Turn.objects.create(conversation=long_chat, parent=long_chat.turns.get(position=29), position=30,
                                  role="assistant", content="another turn 30")
    page = key_client.get(url, {"leaf": version.pk, "page_size": 20, "page": 2}).json()
    assert page["count"] == 30 and [t["position"] for t in page["results"]] == list(range(21, 31))
    assert page["results"][-1]["content"] == "another turn 30" and page["results"][-1]["sibling_count"] == 2


@pytest.mark.parametrize("length", [4, 260])
def test_turns_page_and_detail_query_counts_do_not_grow_with_the_chat(key_client, user, length):
    chat = conversation_with_history(user, length)
    Feedback.objects.create(turn=chat.turns.get(position=2), rating=1)
    key_client.get("/api/v1/conversations/")
    with CaptureQueriesContext(connection) as queries:
        page = key_client.get(f"/api/v1/conversations/{chat.pk}/turns/", {"page": 1}).json()
    # 1 the API key, 2 the conversation, 3 the leaf's depth, 4 the page of the branch, 5 its feedback.
    assert len(queries) == 5
    assert len(page["results"]) == min(length, 50)
    with CaptureQueriesContext(connection) as queries:
        detail = key_client.get(f"/api/v1/conversations/{chat.pk}/").json()
    # 1 the API key, 2 the conversation, 3 the latest review, 4 the newest turns of the branch, 5 their feedback.
    assert len(queries) == 5
    assert len(detail["turns"]) == min(length, 100) and detail["earlier_turns"] is (length > 100)
    assert detail["turns"][-1]["position"] == length


# --- The sidebar --------------------------------------------------------------------------------------------------


def history_ids(html: str) -> list[str]:
    return re.findall(r'class="history-item" data-id="([0-9a-f-]+)"', html)


@pytest.mark.parametrize("chats", [160, 400])
def test_opening_the_oldest_chat_renders_one_page_of_history(authenticated_client, user, chats,
                                                             django_assert_num_queries):
    now = timezone.now()
    rows = Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"chat {i}", updated_at=now - timezone.timedelta(minutes=i))
         for i in range(chats)]
    )
    oldest = rows[-1]
    authenticated_client.get("/")
    # 1 session, 2 user, 3 the conversation, 4 the user's groups, their policies and budget override (the models
    # offered: teams.policy, one query), 5 the latest staff review, 6 the pinned chats, 7 the history page (the open
    # chat, not on it, is shown above it without a query), 8 the projects, 9 the user's custom instructions (the
    # chat's settings show them), 10 the assistants offered in the sidebar, 11 the user's knowledge bases (the chat's
    # settings); no turns: an empty chat.
    with django_assert_num_queries(11):
        html = authenticated_client.get(oldest.get_absolute_url()).content.decode()
    assert history_ids(html) == [str(oldest.pk), *(str(c.pk) for c in rows[:50])]


# --- Export all my data and account deletion, in batches --------------------------------------------------------


def _chats(user, count, *, turns=3):
    for number in range(count):
        chat = conversation_with_history(user, turns + number % 3, title=f"chat {number}")
        Feedback.objects.create(turn=chat.turns.get(position=2), rating=-1, comment="meh")


def _export_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/account/export/")
        body = b"".join(response)
    return len(queries), zipfile.ZipFile(io.BytesIO(body))


@sync_stream_warning
def test_export_query_count_grows_by_batch_not_by_chat(authenticated_client, user, other_user, monkeypatch):
    _chats(user, 3)
    authenticated_client.get("/")
    few, archive = _export_queries(authenticated_client)
    _chats(user, 27)
    many, archive = _export_queries(authenticated_client)
    # 1 session, 2 user, 3 the chats' ids and sizes, 4-6 one batch (the chats, their turns with feedback, their
    # knowledge citations), 7-10 the custom instructions, memories, prompts and assistants (personal.json), 11 the
    # attachments.
    assert few == many == 11
    document = json.loads(archive.read("chats.json"))
    assert len(document["chats"]) == 30
    assert all(chat["turns"][1]["feedback"] == {"rating": -1, "comment": "meh"} for chat in document["chats"])
    markdown = [name for name in archive.namelist() if name.startswith("chats/")]
    assert len(markdown) == 30
    # Smaller batches: three queries a batch (30 chats in batches of 7: five batches).
    monkeypatch.setattr(account_data, "BATCH_CHATS", 7)
    batched, archive = _export_queries(authenticated_client)
    assert batched == 11 + 3 * 4
    assert json.loads(archive.read("chats.json")) == document


def test_the_export_holds_each_chats_shown_branch_and_every_version(user):
    chat = conversation_with_history(user, 4, title="Versions")
    old_answer = chat.turns.get(position=4)
    new_answer = Turn.objects.create(conversation=chat, parent=old_answer.parent, position=4, role="assistant",
                                     content="second version")
    Conversation.objects.filter(pk=chat.pk).update(current_turn=new_answer)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(account_data.account_export(user=user))))
    [markdown] = [name for name in archive.namelist() if name.startswith("chats/")]
    text = archive.read(markdown).decode()
    assert "second version" in text and "turn 4" not in text and "turn 3" in text
    turns = json.loads(archive.read("chats.json"))["chats"][0]["turns"]
    assert {t["content"] for t in turns} == {"turn 1", "turn 2", "turn 3", "turn 4", "second version"}


def _deletion_request(user, password) -> tuple[int, Client]:
    client = Client()
    client.force_login(user)
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/account/delete/", {"password": password}, follow=False)
    assert response.status_code == 302
    return len(queries), client


@pytest.mark.django_db(transaction=True)  # the task worker opens its own transactions
@pytest.mark.parametrize("chats", [2, 40])
def test_account_deletion_closes_the_account_at_once_and_deletes_it_in_a_task(user, other_user, password, chats):
    _chats(user, chats, turns=6)
    _chats(other_user, 1)
    request_queries, client = _deletion_request(user, password)
    # The request: 1-2 session and user; the account closed and the task queued in one transaction (8 statements
    # with its begin, the audit log's look at the account and its entry among them: teams.audit); the logout (4:
    # axes' attempts and log, the session read and deleted). The same for 2 and 40 chats: nothing of the history is
    # read or deleted in the request.
    assert request_queries == 2 + 8 + 4
    user.refresh_from_db()
    assert not user.is_active and not user.has_usable_password()
    stale_session = Client()
    stale_session.force_login(user)
    assert stale_session.get("/").status_code == 302  # signed out everywhere: an inactive user is no user
    page = client.get(reverse("signup")).content.decode()
    assert "being deleted in the background" in page
    assert Conversation.objects.filter(owner_id=user.pk).count() == chats  # still there: the task deletes it

    with CaptureQueriesContext(connection) as queries:
        run_queued_tasks()
    assert not Conversation.objects.filter(owner_id=user.pk).exists()
    assert not Turn.objects.filter(conversation__owner_id=user.pk).exists()
    assert not type(user).objects.filter(pk=user.pk).exists()
    assert Turn.objects.count() == 3 and Feedback.objects.count() == 1  # the other user's chat is untouched
    # Whatever the number of chats and turns (one batch here): the turns go with one DELETE, not one per turn.
    turn_deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE FROM conversations_turn")]
    assert len(turn_deletes) == 1


@pytest.mark.parametrize("chats", [2, 40])
def test_the_deletion_tasks_query_count_does_not_grow_with_the_history(user, other_user, chats):
    _chats(user, chats, turns=6)
    _chats(other_user, 1)
    with CaptureQueriesContext(connection) as queries:
        account_data.account_data_delete(user_id=user.pk)
    assert not Conversation.objects.filter(owner_id=user.pk).exists()
    assert len(queries) == DELETE_QUERIES


# 1 the user, 2 the chats' ids and sizes; a batch (13): savepoint, its attachments, feedback deleted, current turns
# cleared, turns deleted, the chats with the collector's look at their turns (none left) and share links, reviews
# deleted, the chats' knowledge bases unlinked, memories unlinked, the chats deleted, release; the account (24):
# savepoint, its keys, chats, files, projects, assistants and knowledge bases looked up, sixteen deletes or updates
# (admin log, groups, permissions, sign-on identities, sessions, storage and usage ledgers, instructions, memories,
# prompts, the budget override; invites, reviews and audit events kept without them), the account deleted, release.
DELETE_QUERIES = 2 + 13 + 24


@pytest.mark.django_db(transaction=True)  # the task worker opens its own transactions
def test_a_long_chat_is_hidden_at_once_and_its_turns_deleted_in_batches(user, other_user, key_client, monkeypatch):
    monkeypatch.setattr(tasks, "DELETE_NOW_TURNS", 10)
    monkeypatch.setattr(account_data, "BATCH_TURNS", 10)
    long = conversation_with_history(user, 35, title="Long")
    Feedback.objects.create(turn=long.turns.get(position=2), rating=1)
    short = conversation_with_history(user, 4, title="Short")
    conversation_with_history(other_user, 3, title="Theirs")

    assert key_client.delete(f"/api/v1/conversations/{short.pk}/").status_code == 204
    assert not Conversation.objects.filter(pk=short.pk).exists()  # short: gone in the request

    with CaptureQueriesContext(connection) as request_queries:
        assert key_client.delete(f"/api/v1/conversations/{long.pk}/").status_code == 204
    assert not any("conversations_turn" in q["sql"] and q["sql"].startswith("DELETE")
                   for q in request_queries.captured_queries)
    assert key_client.get(f"/api/v1/conversations/{long.pk}/").status_code == 404  # hidden at once
    assert "Long" not in [c["title"] for c in key_client.get("/api/v1/conversations/").json()["results"]]
    assert Turn.objects.filter(conversation_id=long.pk).count() == 35

    with CaptureQueriesContext(connection) as queries:
        run_queued_tasks()
    assert not Conversation.objects.filter(pk=long.pk).exists() and not Turn.objects.filter(conversation_id=long.pk)
    assert Turn.objects.count() == 3
    # 35 turns, 10 a batch, deepest first: four batches of turns, then the chat (no turn left to delete).
    turn_deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE FROM conversations_turn")]
    assert len(turn_deletes) == 5


def test_housekeeping_deletes_a_chat_whose_deletion_was_interrupted(user, monkeypatch):
    monkeypatch.setattr(account_data, "BATCH_TURNS", 10)
    long = conversation_with_history(user, 25, title="Long")
    Conversation.objects.filter(pk=long.pk).update(delete_after=timezone.now())  # as conversation_remove leaves it
    temporary = conversation_with_history(user, 2, title="Temporary")
    Conversation.objects.filter(pk=temporary.pk).update(delete_after=timezone.now())
    assert organizing.temporary_chats_delete_expired() == 2
    assert not Conversation.objects.exists() and not Turn.objects.exists()


# --- Admin ------------------------------------------------------------------------------------------------------


def test_the_admin_change_page_shows_a_page_of_turns(user, make_user):
    chat = conversation_with_history(user, 450, title="Very long")
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    url = reverse("admin:conversations_conversation_change", args=[chat.pk])
    first = client.get(url).content.decode()
    assert first.count("review-turn-content") == 100 and "Turns 1–100 of 450." in first
    last = client.get(url, {"turns_page": 5}).content.decode()
    assert last.count("review-turn-content") == 50 and "Turns 401–450 of 450." in last
    assert ">turn 450<" in last and ">turn 1<" not in last
    assert client.get(url, {"turns_page": "99"}).content.decode().count("review-turn-content") == 100


def test_seed_demo_builds_a_site_of_linked_branches(db):
    call_command("seed_demo", turns=2000, stdout=io.StringIO())
    demo = Conversation.objects.filter(owner__username="demo")
    assert Turn.objects.count() >= 2000
    longest = demo.order_by("-turn_count").first()
    assert longest.current_turn.position == longest.turn_count == longest.turns.count()
    assert found(longest.owner, "quetzal")


def test_an_admin_search_count_stops_at_the_cap(user, make_user, monkeypatch):
    monkeypatch.setattr(review_admin, "SEARCH_COUNT_CAP", 3)
    monkeypatch.setattr(admin.site._registry[Conversation], "list_per_page", 2)  # the cap is above a page
    for number in range(5):
        add_turns(conversation_create(owner=user, title=f"chat {number}"), ("user", "a word about sourdough"))
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    changelist = reverse("admin:conversations_conversation_changelist")
    searched = client.get(changelist, {"q": "sourdough"}).context["cl"]
    assert searched.result_count == 3 and len(searched.result_list) == 2
    assert client.get(changelist).context["cl"].result_count == 5  # the plain list is counted whole


def test_account_deletion_goes_batch_by_batch(user, monkeypatch):
    monkeypatch.setattr(account_data, "BATCH_CHATS", 3)
    _chats(user, 7)
    with CaptureQueriesContext(connection) as queries:
        account_data.account_data_delete(user_id=user.pk)
    # Seven chats in batches of three: three batches, each with its one DELETE of turns.
    turn_deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE FROM conversations_turn")]
    assert len(turn_deletes) == 3
    assert not Turn.objects.exists() and not Conversation.objects.exists()
