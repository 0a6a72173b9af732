"""Admin exports (conversations.exports' bulk JSON/CSV): every turn of every selected chat, streamed."""

import csv
import io
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.test import AsyncClient, Client
from django.urls import reverse

from conversations import exports
from conversations.models import Conversation, Turn
from conversations.tests.admin_support import XSS_PAYLOAD, add_exchange, make_conversation

CHANGELIST = reverse("admin:conversations_conversation_changelist")

# The sync test client consumes the async stream in one go (Django warns about it); uvicorn streams it
# piece by piece, which the AsyncClient test below checks.
sync_stream_warning = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def selection(user, other_user):
    """More conversations than one export batch, with 0 to 4 exchanges each, plus one not selected."""
    conversations = []
    for number in range(exports.EXPORT_BATCH + 20):
        owner = user if number % 2 else other_user
        conversation = make_conversation(owner, f"chat {number}", exchanges=number % 5)
        conversations.append(conversation)
    add_exchange(conversations[7], "=1+1", XSS_PAYLOAD + '\nline two, "quoted"', rating=-1)
    unselected = make_conversation(user, "not selected", exchanges=2)
    return conversations, unselected


def _export(client, action, conversations):
    response = client.post(CHANGELIST, {"action": action, "_selected_action": [c.pk for c in conversations]})
    assert response.status_code == 200
    assert response.streaming
    return response, b"".join(response).decode()


def _expected_turns():
    return {
        (str(turn.conversation_id), turn.position): turn
        for turn in Turn.objects.exclude(conversation__title="not selected").select_related("feedback")
    }


@sync_stream_warning
@pytest.mark.django_db
def test_json_export_contains_every_turn_of_every_selected_conversation(superuser_client, selection):
    conversations, unselected = selection
    response, body = _export(superuser_client, "export_json", conversations)
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')

    data = json.loads(body)
    assert sorted(item["id"] for item in data) == sorted(str(c.pk) for c in conversations)
    expected = _expected_turns()
    exported = {(item["id"], turn["position"]): turn for item in data for turn in item["turns"]}
    assert exported.keys() == expected.keys()
    assert len(exported) == 2 * sum(n % 5 for n in range(len(conversations))) + 2
    for key, turn in expected.items():
        assert exported[key]["content"] == turn.content
        assert exported[key]["role"] == turn.role
        assert exported[key]["status"] == turn.status
        assert exported[key]["prompt_tokens"] == turn.prompt_tokens
    for item in data:
        positions = [turn["position"] for turn in item["turns"]]
        assert positions == sorted(positions)

    seventh = next(item for item in data if item["title"] == "chat 7")
    assert seventh["owner"] == "alice"
    assert seventh["turns"][-1]["content"] == XSS_PAYLOAD + '\nline two, "quoted"'  # JSON is verbatim
    assert seventh["turns"][-1]["feedback"]["rating"] == -1
    assert "not selected" not in body


@sync_stream_warning
@pytest.mark.django_db
def test_csv_export_has_a_row_per_turn_and_keeps_formulas_as_text(superuser_client, selection):
    conversations, unselected = selection
    response, body = _export(superuser_client, "export_csv", conversations)
    assert response["Content-Type"] == "text/csv; charset=utf-8"

    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0].keys()) == exports.CSV_COLUMNS
    turn_rows = {(row["conversation_id"], int(row["position"])): row for row in rows if row["position"]}
    expected = _expected_turns()
    assert turn_rows.keys() == expected.keys()
    assert len(turn_rows) == len(rows)
    for key, turn in expected.items():
        if turn.content.startswith("="):
            assert turn_rows[key]["content"] == "'" + turn.content  # a formula stays text in a spreadsheet
        else:
            assert turn_rows[key]["content"] == turn.content
    ratings = {key: exports._feedback(turn) for key, turn in expected.items()}
    assert any(ratings.values())
    for key, feedback in ratings.items():
        assert turn_rows[key]["feedback_rating"] == (str(feedback["rating"]) if feedback else "")
        assert turn_rows[key]["feedback_comment"] == (feedback["comment"] if feedback else "")
    seventh = next(c for c in conversations if c.title == "chat 7")
    assert turn_rows[(str(seventh.pk), seventh.turns.count())]["feedback_rating"] == "-1"
    assert "not selected" not in body


@pytest.mark.django_db(transaction=True)
async def test_export_streams_chunk_by_chunk_under_asgi(make_user):
    def create():
        root = make_user("root", is_staff=True, is_superuser=True)
        owner = make_user("owner")
        chats = [make_conversation(owner, f"chat {n}", exchanges=1) for n in range(exports.EXPORT_BATCH + 1)]
        return root, chats

    superuser, chats = await sync_to_async(create)()
    client = AsyncClient()
    await client.aforce_login(superuser)
    response = await client.post(CHANGELIST, {"action": "export_json", "_selected_action": [c.pk for c in chats]})
    assert response.status_code == 200
    assert response.is_async
    parts = [part async for part in response.streaming_content]
    # "[", one piece per conversation, "]": the document is sent in pieces, not built whole.
    assert len(parts) == len(chats) + 2
    assert len(json.loads(b"".join(parts))) == len(chats)


@pytest.mark.django_db
def test_export_actions_are_for_superusers_only(client, make_user, user):
    conversation = make_conversation(user, "x")
    staff = make_user("staffer", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="conversations"))
    client.force_login(staff)
    for action in ["export_json", "export_csv"]:
        response = client.post(CHANGELIST, {"action": action, "_selected_action": [conversation.pk]})
        assert response.status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists()
