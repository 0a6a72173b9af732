"""The per-user event stream (conversations.notifications, without Redis): each write tells its owner's open windows
once it commits, and nobody else; a window that reconnects gets what it missed, or is told to resync."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from conversations import account_data, notifications, organizing, services
from conversations.models import Conversation, Project
from conversations.tests.factories import conversation_with_history

pytestmark = pytest.mark.django_db


class Window:
    """An open window: listens on an event loop of its own in its own thread, as a server's loop would."""

    def __init__(self, user_id: int, after: str = ""):
        self.items: list[tuple[str, notifications.Event]] = []
        self._listening = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, args=(user_id, after), daemon=True)
        self._thread.start()
        assert self._listening.wait(5), "the window did not start listening"

    def _run(self, user_id: int, after: str) -> None:
        async def listen() -> None:
            async for item in notifications.subscribe(user_id, after):
                if item is None:
                    self._listening.set()
                else:
                    self.items.append(item)

        self._task = self._loop.create_task(listen())
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    def close(self) -> list[tuple[str, notifications.Event]]:
        """Stop listening (after what was sent so far has arrived); the items received."""
        task = self._task
        assert task is not None
        self._loop.call_soon_threadsafe(lambda: self._loop.call_later(0.1, task.cancel))
        self._thread.join(5)
        return self.items

    @property
    def events(self) -> list[notifications.Event]:
        return [event for _id, event in self.items]


@pytest.fixture(autouse=True)
def _in_process(settings):
    settings.REDIS_URL = ""


def test_each_write_is_told_to_its_owner_after_it_commits(user, django_capture_on_commit_callbacks):
    window = Window(user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = services.conversation_create(owner=user, title="First")
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_update(conversation=conversation, title="Renamed")
    with django_capture_on_commit_callbacks(execute=True):
        organizing.conversation_pin(conversation=conversation, pinned=True)
    project = Project.objects.create(owner=user, name="Work")
    with django_capture_on_commit_callbacks(execute=True):
        organizing.conversation_move(conversation=conversation, project=project)
    with django_capture_on_commit_callbacks(execute=True):
        services.title_store(conversation_id=conversation.pk, fallback="Renamed", title="A model's title")
    conversation_id = str(conversation.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(conversation=conversation)
    window.close()
    events = window.events
    assert [event["type"] for event in events] == [
        "conversation.created", "conversation.updated", "conversation.updated", "conversation.updated",
        "conversation.updated", "conversation.deleted",
    ]
    assert [event["conversation"]["title"] for event in events[:2]] == ["First", "Renamed"]
    assert events[2]["conversation"]["pinned"] is True
    assert events[3]["conversation"]["project_id"] == project.pk
    assert events[4]["conversation"]["title"] == "A model's title"
    assert events[5] == {"type": "conversation.deleted", "conversation_id": conversation_id}


def test_a_write_rolled_back_is_never_told(user, django_capture_on_commit_callbacks):
    conversation = services.conversation_create(owner=user, title="Kept")
    window = Window(user.pk)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.conversation_update(conversation=conversation, title="Never stored")
        raise RuntimeError("the request failed after the rename")
    assert callbacks == []
    assert window.close() == []


def test_a_user_hears_only_of_their_own_chats(user, other_user, django_capture_on_commit_callbacks):
    mine, theirs = Window(user.pk), Window(other_user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = services.conversation_create(owner=other_user, title="Their chat")
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_update(conversation=conversation, title="Their secret plans")
    assert mine.close() == []
    theirs.close()
    assert [event["conversation"]["title"] for event in theirs.events] == [
        "Their chat", "Their secret plans",
    ]


def test_a_temporary_chat_is_described_as_it_was_committed(user, django_capture_on_commit_callbacks):
    window = Window(user.pk)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        conversation = services.conversation_create(owner=user)
        organizing.conversation_make_temporary(conversation=conversation)
    window.close()
    (event,) = window.events
    assert event["type"] == "conversation.created"
    assert event["conversation"]["temporary"] is True  # the page does not list it


def test_a_window_that_reconnects_gets_what_it_missed(user, django_capture_on_commit_callbacks):
    conversation = services.conversation_create(owner=user, title="One")
    window = Window(user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_update(conversation=conversation, title="Two")
    (last_seen, _event), = window.close()
    for title in ("Three", "Four"):
        with django_capture_on_commit_callbacks(execute=True):
            services.conversation_update(conversation=conversation, title=title)
    again = Window(user.pk, after=last_seen)
    again.close()
    assert [event["conversation"]["title"] for event in again.events] == ["Three", "Four"]


def test_an_id_it_cannot_place_asks_for_a_resync(user):
    window = Window(user.pk, after="another-run-42")
    window.close()
    assert window.events == [{"type": "resync"}]


def test_projects_made_renamed_and_deleted_are_told_to_their_owner_only(
    user, other_user, django_capture_on_commit_callbacks
):
    window, stranger = Window(user.pk), Window(other_user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        project = organizing.project_create(owner=user, name="  Work   notes ")
    project_id = project.pk
    with django_capture_on_commit_callbacks(execute=True):
        organizing.project_update(project=project, name="Client work")
    with django_capture_on_commit_callbacks(execute=True):
        organizing.project_delete(project=project)
    window.close()
    assert window.events == [
        {"type": "project.created", "project": {"id": project_id, "name": "Work notes"}},
        {"type": "project.updated", "project": {"id": project_id, "name": "Client work"}},
        {"type": "project.deleted", "project_id": project_id, "chats_deleted": False},
    ]
    assert stranger.close() == []


def test_a_project_name_taken_is_never_told(user, django_capture_on_commit_callbacks):
    organizing.project_create(owner=user, name="Work")
    other = organizing.project_create(owner=user, name="Home")
    window = Window(user.pk)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(organizing.ProjectNameTaken):
        organizing.project_create(owner=user, name="Work")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(organizing.ProjectNameTaken):
        organizing.project_update(project=other, name="Work")
    assert window.close() == []


def test_a_project_deleted_with_its_chats_tells_each_chat_then_the_project(
    user, other_user, django_capture_on_commit_callbacks
):
    project = organizing.project_create(owner=user, name="Work")
    chats = [services.conversation_create(owner=user, title=f"Chat {n}", project=project) for n in range(2)]
    outside = services.conversation_create(owner=user, title="Not in it")
    project_id = project.pk
    window, stranger = Window(user.pk), Window(other_user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        organizing.project_delete(project=project, delete_chats=True)
    window.close()
    *deleted, last = window.events
    assert sorted(deleted, key=lambda event: event["conversation_id"]) == sorted(
        ({"type": "conversation.deleted", "conversation_id": str(chat.pk)} for chat in chats),
        key=lambda event: event["conversation_id"],
    )
    assert last == {"type": "project.deleted", "project_id": project_id, "chats_deleted": True}
    assert stranger.close() == []
    assert Conversation.objects.filter(pk=outside.pk).exists()


def test_closing_an_account_tells_its_windows_and_nobody_else(
    client, user, other_user, password, django_capture_on_commit_callbacks
):
    client.force_login(user)
    window, stranger = Window(user.pk), Window(other_user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("conversations:account-delete"), {"password": password})
    assert response.status_code == 302
    window.close()
    assert window.events == [{"type": "account.closed"}]
    assert stranger.close() == []


def test_a_wrong_password_closes_nothing_and_tells_nothing(client, user, django_capture_on_commit_callbacks):
    client.force_login(user)
    window = Window(user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("conversations:account-delete"), {"password": "not it"})
    assert window.close() == []


def test_expired_temporary_chats_swept_away_are_told_to_their_owners(
    user, other_user, django_capture_on_commit_callbacks
):
    now = timezone.now()
    mine = Conversation.objects.create(owner=user, title="expired", delete_after=now - timedelta(minutes=1))
    theirs = Conversation.objects.create(owner=other_user, title="theirs", delete_after=now - timedelta(minutes=1))
    Conversation.objects.create(owner=user, title="still running", delete_after=now + timedelta(hours=1))
    Conversation.objects.create(owner=user, title="kept")
    window, stranger = Window(user.pk), Window(other_user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert organizing.temporary_chats_delete_expired() == 2
    window.close()
    stranger.close()
    assert window.events == [{"type": "conversation.deleted", "conversation_id": str(mine.pk), "reason": "expired"}]
    assert stranger.events == [
        {"type": "conversation.deleted", "conversation_id": str(theirs.pk), "reason": "expired"}
    ]


def test_a_long_expired_chat_deleted_in_batches_is_told_once_it_is_gone(
    user, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(account_data, "BATCH_TURNS", 2)  # 5 turns: longer than a batch
    chat = conversation_with_history(user, 5, title="long")
    Conversation.objects.filter(pk=chat.pk).update(delete_after=timezone.now() - timedelta(minutes=1))
    window = Window(user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert organizing.temporary_chats_delete_expired() == 1
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    window.close()
    assert window.events == [{"type": "conversation.deleted", "conversation_id": str(chat.pk), "reason": "expired"}]
