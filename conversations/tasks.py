"""Background tasks (Django's task framework, chatsite.task_worker runs them) and the short writes that queue them:
deleting an account or a long chat, in batches, off the request path.

Each write hides what it deletes at once, in one short transaction that also queues the task (with the database
backend the task row commits with it), so the page can answer at once and say the deletion is under way.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import logout
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from conversations import account_data, notifications
from conversations.models import Conversation

# A chat with at most this many turns is deleted in the request (one short transaction: account_data's batch size);
# a longer one is hidden at once and deleted by a task.
DELETE_NOW_TURNS = account_data.BATCH_TURNS


@task()
def account_delete_task(user_id: int) -> None:
    account_data.account_data_delete(user_id=user_id)


@task()
def conversation_delete_task(conversation_id: str) -> None:
    account_data.conversation_delete_in_batches(uuid.UUID(conversation_id))


def account_close(*, request) -> None:
    """Close the logged-in user's account at once (it can no longer log in, its keys stop working, nothing of it is
    listed) and queue the deletion of everything it owns; end the session. The caller has checked the password."""
    user = request.user
    with transaction.atomic():
        user.is_active = False
        user.set_unusable_password()
        user.save(update_fields=["is_active", "password"])
        account_delete_task.enqueue(user.pk)
        notifications.account_closed(user.pk)  # its other windows stop at once
    logout(request)


def conversation_remove(*, conversation: Conversation) -> None:
    """Delete a chat: a short one at once; a long one is gone from every route at once (it reads as a temporary
    chat past its time) and its turns are deleted in batches by a task."""
    if conversation.turn_count <= DELETE_NOW_TURNS:
        account_data.conversations_delete([conversation.pk])
        return
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(delete_after=timezone.now())
        conversation_delete_task.enqueue(str(conversation.pk))
