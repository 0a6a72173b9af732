"""Personalization writes and the system text they add to a chat, read back from the database."""

import pytest
from django.db import IntegrityError

from conversations.models import Conversation
from conversations.services import conversation_create
from personal import selectors, services
from personal.models import Memory

pytestmark = pytest.mark.django_db


def system_text(conversation: Conversation) -> str:
    """The chat's personal system text (its sections as the system prompt joins them), the chat read as a turn reads
    it (with its personal columns)."""
    sections = selectors.personal_system_sections(
        conversation=selectors.with_personal_prompt(Conversation.objects.all()).get(pk=conversation.pk)
    )
    return "\n\n".join(text for _, text in sections)


def test_instructions_then_memories_in_that_order(user):
    services.personalization_update(user=user, about_me="I teach physics.", answer_style="Short answers.")
    services.memory_create(owner=user, content="Has a cat named Miso.")
    services.memory_create(owner=user, content="  Lives in Busan.  ")
    conversation = conversation_create(owner=user)

    text = system_text(conversation)

    assert text == (
        "What the user says about themselves:\nI teach physics.\n\n"
        "How the user wants you to answer:\nShort answers.\n\n"
        "Facts the user asked you to remember (most recent first):\n- Lives in Busan.\n- Has a cat named Miso."
    )


def test_nothing_is_added_to_a_chat_with_personal_off_or_with_nothing_set(user):
    assert system_text(conversation_create(owner=user)) == ""
    services.personalization_update(user=user, about_me="I teach physics.")
    off = conversation_create(owner=user, personal=False)
    assert system_text(off) == ""


def test_memory_off_keeps_the_facts_but_leaves_them_out(user):
    services.memory_create(owner=user, content="Has a cat named Miso.")
    services.personalization_update(user=user, memory_enabled=False)
    conversation = conversation_create(owner=user)
    assert system_text(conversation) == ""
    assert Memory.objects.for_user(user).count() == 1


def test_memories_beyond_the_budget_are_left_out_with_a_notice(user, settings):
    settings.CHAT_MEMORY_PROMPT_CHARS = 60
    for number in range(5):
        services.memory_create(owner=user, content=f"Fact number {number} is here.")
    text = system_text(conversation_create(owner=user))
    lines = text.splitlines()[1:]
    # Each line is 25 characters with its newline: two fit in 60, the three oldest are left out and said so.
    assert lines == [
        "- Fact number 4 is here.", "- Fact number 3 is here.", "(3 older memories left out to fit the prompt.)"
    ]


def test_one_users_memories_never_reach_anothers_prompt(user, other_user):
    services.memory_create(owner=other_user, content="Bob's secret.")
    assert system_text(conversation_create(owner=user)) == ""


@pytest.mark.parametrize("content", ["", "   ", "x" * 501])
def test_empty_or_long_memories_are_refused(user, content):
    with pytest.raises(services.MemoryRefused):
        services.memory_create(owner=user, content=content)
    assert not Memory.objects.exists()


def test_the_database_refuses_an_empty_memory(user):
    with pytest.raises(IntegrityError):
        Memory.objects.create(owner=user, content="")


def test_the_model_cannot_save_a_memory_when_memory_is_off(user):
    services.personalization_update(user=user, memory_enabled=False)
    with pytest.raises(services.MemoryRefused):
        services.memory_remember(owner_id=user.pk, conversation_id=None, tool_call_id="call_1", content="A fact.")
    assert not Memory.objects.exists()


def test_memories_go_with_the_account(user, other_user):
    services.memory_create(owner=user, content="Mine.")
    services.personalization_update(user=user, about_me="Me.")
    services.memory_create(owner=other_user, content="Bob's.")
    user.delete()
    assert list(Memory.objects.values_list("content", flat=True)) == ["Bob's."]
