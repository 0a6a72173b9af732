"""Organizing chats from the page: pins, folders, temporary chats, message times, shortcuts, and the user's own
data (export everything, delete the account)."""

import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey
from chatsite.task_worker import run_queued_tasks
from conversations.attachments import attachment_create
from conversations.models import Conversation, Project, ShareLink, Turn
from conversations.organizing import conversation_pin, project_create
from conversations.sharing import share_link_create
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db


def post_json(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def history_ids(html: str) -> list[str]:
    return re.findall(r'class="history-item" data-id="([0-9a-f-]+)"', html)


def chats(user, count):
    now = timezone.now()
    return Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"chat {i}", updated_at=now - timedelta(minutes=i)) for i in range(count)]
    )

# The sync test client collects the streamed zip in one go (Django warns about it); uvicorn streams it.
sync_stream_warning = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")


def test_pinned_chats_lead_the_list_in_their_own_group(authenticated_client, user):
    rows = chats(user, 60)
    assert post_json(authenticated_client, f"/c/{rows[55].pk}/organize/", {"pinned": True}).json() == {
        "pinned": True, "folder": None}
    conversation_pin(conversation=rows[10], pinned=True)  # pinned last: first
    html = authenticated_client.get("/c/history/").content.decode()
    ids = history_ids(html)
    assert ids[:2] == [str(rows[10].pk), str(rows[55].pk)]
    assert ids.count(str(rows[10].pk)) == 1 and len(ids) == 52  # the pinned two, then a page of 50
    assert html.index('data-group="pinned"') < html.index('data-group="today"')
    # The next page carries on after the page's last unpinned chat, and never repeats a pinned one.
    cursor = re.search(r'data-cursor="([^"]+)"', html).group(1)
    more = history_ids(authenticated_client.get("/c/history/", {"cursor": cursor}).content.decode())
    assert str(rows[10].pk) not in more and str(rows[55].pk) not in more and len(more) == 8
    # Pinning is not activity.
    before = Conversation.objects.get(pk=rows[55].pk).updated_at
    post_json(authenticated_client, f"/c/{rows[55].pk}/organize/", {"pinned": False})
    assert Conversation.objects.get(pk=rows[55].pk).updated_at == before


def test_folders_file_chats_and_filter_the_list(authenticated_client, user, other_user):
    rows = chats(user, 3)
    created = post_json(authenticated_client, "/folders/", {"name": "  Work   trips "})
    assert created.status_code == 201 and created.json()["name"] == "Work trips"
    folder_id = created.json()["id"]
    assert post_json(authenticated_client, "/folders/", {"name": "Work trips"}).status_code == 409
    assert post_json(authenticated_client, "/folders/", {"name": " "}).status_code == 400
    assert post_json(authenticated_client, f"/c/{rows[1].pk}/organize/", {"folder": folder_id}).json() == {
        "pinned": False, "folder": folder_id}
    listed = history_ids(authenticated_client.get("/c/history/", {"folder": folder_id}).content.decode())
    assert listed == [str(rows[1].pk)]
    assert "Work trips" in authenticated_client.get("/").content.decode()

    # Another user's folder: neither to file into nor to list.
    bobs = project_create(owner=other_user, name="bob's")
    assert post_json(authenticated_client, f"/c/{rows[0].pk}/organize/", {"folder": bobs.pk}).status_code == 404
    assert authenticated_client.get("/c/history/", {"folder": bobs.pk}).status_code == 404
    assert authenticated_client.get("/c/history/", {"folder": "x"}).status_code == 400
    for bad in ({"folder": "1"}, {"folder": True}, {"pinned": "yes"}):
        assert post_json(authenticated_client, f"/c/{rows[0].pk}/organize/", bad).status_code == 400

    # Out of the folder again, then the folder deleted: its chats stay.
    post_json(authenticated_client, f"/c/{rows[1].pk}/organize/", {"folder": None})
    assert Conversation.objects.get(pk=rows[1].pk).project is None
    post_json(authenticated_client, f"/c/{rows[2].pk}/organize/", {"folder": folder_id})
    assert authenticated_client.post(f"/folders/{folder_id}/delete/").status_code == 200
    assert not Project.objects.filter(pk=folder_id).exists()
    assert Conversation.objects.get(pk=rows[2].pk).project is None


def test_a_temporary_chat_is_never_listed_and_goes_after_its_time(authenticated_client, user, settings):
    settings.CHAT_TEMPORARY_HOURS = 24
    response = post_json(authenticated_client, "/c/start/", {"temporary": True})
    conversation = Conversation.objects.get(pk=response.json()["id"])
    assert conversation.delete_after == conversation.created_at + timedelta(hours=24)
    add_turns(conversation, ("user", "off the record"), ("assistant", "noted"))
    kept = Conversation.objects.create(owner=user, title="kept")
    assert history_ids(authenticated_client.get("/").content.decode()) == [str(kept.pk)]
    assert history_ids(authenticated_client.get("/c/history/", {"q": "record"}).content.decode()) == []
    listed = authenticated_client.get("/api/v1/conversations/").json()["results"]
    assert [c["id"] for c in listed] == [str(kept.pk)]  # nor through the API
    page = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert "Temporary chat: not listed in your history and deleted 24 hours after it starts." in page
    assert post_json(authenticated_client, "/c/start/", {"temporary": "yes"}).status_code == 400

    Conversation.objects.filter(pk=conversation.pk).update(delete_after=timezone.now() - timedelta(seconds=1))
    assert authenticated_client.get(conversation.get_absolute_url()).status_code == 404  # gone before deletion
    out = io.StringIO()
    call_command("housekeeping", stdout=out)
    assert out.getvalue() == "Deleted 1 temporary chat(s), 0 unsent file(s).\n"
    assert list(Conversation.objects.all()) == [kept]
    assert not Turn.objects.exists()


def test_messages_carry_their_time(authenticated_client, user):
    conversation = Conversation.objects.create(owner=user, title="Timed")
    answer = add_turns(conversation, ("user", "when?"), ("assistant", "now"))
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert html.count('<time class="turn-time"') == 2
    assert f'datetime="{answer.created_at.isoformat()}"' in html or answer.created_at.strftime("%Y-%m-%dT") in html


def test_the_shortcuts_are_listed(authenticated_client):
    html = authenticated_client.get("/").content.decode()
    assert 'id="shortcuts-dialog"' in html
    for action in ("New chat", "Search chats", "Focus the message box", "Stop the answer being written",
                   "Copy the last answer"):
        assert f"<td>{action}</td>" in html


@sync_stream_warning
def test_export_all_my_data_is_a_zip_of_my_chats_only(authenticated_client, user, other_user):
    mine = Conversation.objects.create(owner=user, title="Mine", archived=True)
    add_turns(mine, ("user", "my question"), ("assistant", "my answer"))
    theirs = Conversation.objects.create(owner=other_user, title="Theirs")
    add_turns(theirs, ("user", "their secret"))
    response = authenticated_client.get("/account/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response)))
    names = archive.namelist()
    assert "chats.json" in names and "README.txt" in names
    document = json.loads(archive.read("chats.json"))
    assert [chat["title"] for chat in document["chats"]] == ["Mine"]
    assert [turn["content"] for turn in document["chats"][0]["turns"]] == ["my question", "my answer"]
    markdown = [name for name in names if name.startswith("chats/") and name.endswith(".md")]
    assert len(markdown) == 1 and "my answer" in archive.read(markdown[0]).decode()
    assert b"their secret" not in b"".join(archive.read(name) for name in names)


@sync_stream_warning
def test_export_all_my_data_carries_my_files_and_names_those_no_longer_stored(authenticated_client, user):
    kept = attachment_create(owner=user, upload=SimpleUploadedFile("notes.txt", b"pack an umbrella\n" * 1000))
    gone = attachment_create(owner=user, upload=SimpleUploadedFile("old.txt", b"lost bytes"))
    gone.file.storage.delete(gone.file.name)
    response = authenticated_client.get("/account/export/")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response)))
    assert archive.read(f"attachments/{kept.pk}/notes.txt") == b"pack an umbrella\n" * 1000
    assert f"attachments/{gone.pk}/old.txt" not in archive.namelist()
    readme = archive.read("README.txt").decode()
    assert "No longer stored" in readme and f"attachments/{gone.pk}/old.txt" in readme


@pytest.mark.django_db(transaction=True)  # the task worker opens its own transactions
def test_delete_my_account_needs_the_password_and_takes_everything(user, other_user, password):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/profile/")
    token = client.cookies["csrftoken"].value
    conversation = Conversation.objects.create(owner=user, title="Mine")
    add_turns(conversation, ("user", "q"), ("assistant", "a"))
    share_link_create(conversation=conversation)
    project_create(owner=user, name="f")
    ApiKey.generate(user=user, name="k")
    Conversation.objects.create(owner=other_user, title="Theirs")

    assert client.post("/account/delete/", {"password": password}).status_code == 403  # no CSRF token
    wrong = client.post("/account/delete/", {"password": "not it", "csrfmiddlewaretoken": token})
    assert wrong.status_code == 302 and wrong["Location"] == "/accounts/profile/"
    assert type(user).objects.filter(pk=user.pk).exists()

    done = client.post("/account/delete/", {"password": password, "csrfmiddlewaretoken": token})
    assert done.status_code == 302 and done["Location"].startswith("/accounts/signup/")
    assert not type(user).objects.get(pk=user.pk).is_active  # closed at once; the data goes in the task
    run_queued_tasks()
    assert not type(user).objects.filter(pk=user.pk).exists()
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Theirs"]
    assert not Turn.objects.exists() and not ShareLink.objects.exists() and not Project.objects.exists()
    assert not ApiKey.objects.filter(user_id=user.pk).exists()
    assert client.get("/").status_code == 302  # logged out
