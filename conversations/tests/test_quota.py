"""The daily token quota: a usage ledger that deleting or replacing answers cannot reduce, and tokens held by
running answers so that parallel starts cannot all slip under it (issue 18, items 9-11)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from conversations import answering, errors, services
from conversations.models import Conversation, DailyUsage, Turn, review_totals
from conversations.selectors import tokens_used_today, usage_by_day
from conversations.services import conversation_create, conversation_delete

pytestmark = pytest.mark.django_db(transaction=True)


def spent_upstream(fake_upstream) -> int:
    """What the fake upstream reported as used, summed over every chat request it answered (its own count)."""
    total = 0
    for request in fake_upstream.chat_requests:
        prompt = sum(len(str(m.get("content", "")).split()) for m in request.messages)
        total += prompt + len(fake_upstream.behaviour.reply.split())
    return total


def test_each_stored_answer_adds_its_tokens_to_the_days_ledger(fake_upstream, user):
    conversation = conversation_create(owner=user)
    first = answering.answer(conversation=conversation, user=user, content="hello there").assistant_turn
    second = answering.answer(conversation=conversation, user=user, content="and again").assistant_turn

    usage = DailyUsage.objects.get(user=user, day=timezone.localdate())
    assert usage.prompt_tokens == first.prompt_tokens + second.prompt_tokens > 0
    assert usage.completion_tokens == first.completion_tokens + second.completion_tokens > 0
    assert usage.answers == 2
    assert tokens_used_today(user) == usage.total_tokens == spent_upstream(fake_upstream)
    conversation.refresh_from_db()
    assert conversation.total_tokens == usage.total_tokens  # the review list's column, kept on the chat
    assert usage_by_day(user, days=1) == [{
        "day": timezone.localdate(), "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens, "answers": 2,
    }]


def test_a_stored_answer_leaves_its_chat_the_total_review_totals_defines(fake_upstream, user):
    """answer_store writes the chat's total_tokens as one statement of its own: it must be the total that
    models.review_totals recomputes (the sum of the chat's turns), for that chat only, whatever the outcome."""
    chat, other = conversation_create(owner=user), conversation_create(owner=user)
    answering.answer(conversation=other, user=user, content="another chat")
    answering.answer(conversation=chat, user=user, content="hello there")
    answering.answer(conversation=chat, user=user, regenerate=True)
    fake_upstream.behaviour.fail_status = 400
    fake_upstream.behaviour.fail_count = 1
    with pytest.raises(errors.UpstreamRejected):
        answering.answer(conversation=chat, user=user, content="refused")

    stored = dict(Conversation.objects.values_list("pk", "total_tokens"))
    Conversation.objects.update(**review_totals("total_tokens"))
    assert dict(Conversation.objects.values_list("pk", "total_tokens")) == stored
    turns_total = sum(turn.prompt_tokens + turn.completion_tokens for turn in chat.turns.all())
    assert stored[chat.pk] == turns_total > stored[other.pk] > 0
    usage = DailyUsage.objects.get(user=user, day=timezone.localdate())
    assert usage.total_tokens == stored[chat.pk] + stored[other.pk] and usage.answers == 4


def test_deleting_chats_gives_no_tokens_back(fake_upstream, user, settings):
    """Item 10: after spending the quota and deleting the chats, the next message is still refused."""
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="spend some tokens")
    spent = tokens_used_today(user)
    settings.CHAT_DAILY_TOKEN_QUOTA = spent
    conversation_delete(conversation=conversation)

    assert tokens_used_today(user) == spent
    fresh = conversation_create(owner=user)
    with pytest.raises(errors.QuotaExceeded):
        answering.answer(conversation=fresh, user=user, content="one more")
    assert len(fake_upstream.chat_requests) == 1
    assert not fresh.turns.exists()  # refused before anything was stored


def test_regenerations_count_every_version_and_the_quota_stops_them(fake_upstream, user, settings):
    """Item 11: every regeneration's tokens count, whatever happens to the versions later."""
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="write something")
    per_answer = tokens_used_today(user)
    settings.CHAT_DAILY_TOKEN_QUOTA = per_answer * 4
    regenerated = 0
    with pytest.raises(errors.QuotaExceeded):
        for _ in range(10):
            answering.answer(conversation=conversation, user=user, regenerate=True)
            regenerated += 1
    assert regenerated == 3  # 4 answers use the quota up exactly
    assert tokens_used_today(user) == spent_upstream(fake_upstream) == per_answer * 4
    conversation_delete(conversation=conversation)
    assert tokens_used_today(user) == per_answer * 4


def test_a_running_answer_holds_tokens_so_a_parallel_start_is_refused(fake_upstream, user, settings):
    """Item 9, in one process: the check counts what running answers may still spend, not only what is stored."""
    settings.CHAT_DAILY_TOKEN_QUOTA = 200
    settings.CHAT_MAX_ANSWER_TOKENS = 512  # a whole answer may cost more than the quota: one runs at a time
    fake_upstream.behaviour.ttft = 0.5  # still running while the second one asks
    first, second = conversation_create(owner=user), conversation_create(owner=user)
    run = answering.begin(conversation=first, user=user, content="a long answer please")
    assert Turn.objects.get(pk=run.assistant_turn.pk).quota_reserved == 200

    with pytest.raises(errors.QuotaExceeded):
        answering.begin(conversation=second, user=user, content="at the same time")
    assert not second.turns.exists()

    run.wait()
    stored = Turn.objects.get(pk=run.assistant_turn.pk)
    assert stored.quota_reserved is None and stored.status == Turn.Status.COMPLETE
    assert tokens_used_today(user) == stored.total_tokens < 200
    answering.answer(conversation=second, user=user, content="now there is room")  # the hold was released


def test_an_answer_holds_only_what_is_left_and_small_answers_share_the_quota(fake_upstream, user, settings):
    settings.CHAT_MAX_ANSWER_TOKENS = 20
    settings.CHAT_DAILY_TOKEN_QUOTA = 100
    fake_upstream.behaviour.ttft = 1.0  # all still running while the next ones ask
    conversations = [conversation_create(owner=user) for _ in range(6)]
    runs = []
    for conversation in conversations:
        try:
            runs.append(answering.begin(conversation=conversation, user=user, content="hi"))
        except errors.QuotaExceeded:
            break
    held = [Turn.objects.get(pk=run.assistant_turn.pk).quota_reserved for run in runs]
    assert sum(held) == 100 and len(runs) == 5 and held[:4] == [20, 20, 20, 20], held
    for run in runs:
        run.wait()
    assert tokens_used_today(user) <= 100 + 20


def test_an_answer_abandoned_by_a_dead_worker_holds_nothing(fake_upstream, user, settings):
    settings.CHAT_DAILY_TOKEN_QUOTA = 200
    first, second = conversation_create(owner=user), conversation_create(owner=user)
    # Begun on a worker that died at once: stored, never produced, no heartbeat.
    run = services.turn_begin(conversation=first, user=user, alive=answering.alive, content="this worker dies")
    # Older than the grace period, and no heartbeat in the cache.
    Turn.objects.filter(pk=run.assistant_turn.pk).update(created_at=timezone.now() - timezone.timedelta(seconds=30))
    cache.clear()
    answering.answer(conversation=second, user=user, content="still served")


def test_a_stopped_answer_counts_what_was_sent_and_written(fake_upstream, user):
    """The upstream reports no usage for an answer cut short: chatsite counts the prompt it sent and the text."""
    fake_upstream.behaviour.tokens = 200
    fake_upstream.behaviour.token_delay = 0.01

    async def go():
        answer = await answering.start(conversation=conversation, user=user, content="stop me soon")
        stopped = False
        async for entry in answer.follow():
            if isinstance(entry.event, answering.AnswerDelta) and not stopped:
                # Once: the deltas already on their way must not race the cancelled answer's store for the test
                # database's table lock (SQLite's shared in-memory database does not wait for it).
                stopped = True
                await sync_to_async(answering.stop_conversation)(conversation)
        return answer

    conversation = conversation_create(owner=user)
    run = asyncio.run(go())
    stored = Turn.objects.get(pk=run.assistant_turn.pk)
    assert stored.status == Turn.Status.CANCELLED and stored.usage_approximate
    assert stored.prompt_tokens > 0 and stored.completion_tokens > 0
    assert tokens_used_today(user) == stored.total_tokens


def _document(user, kilobytes: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from conversations.attachments import attachment_create

    text = ("All work and no play makes a long document. " * 30 * kilobytes)[: kilobytes * 1024]
    return attachment_create(owner=user, upload=SimpleUploadedFile("notes.txt", text.encode(), "text/plain"))


def test_admission_counts_the_documents_sent_with_a_message(fake_upstream, user, settings):
    """Ten messages each with a 40 KB document were all admitted against a 20,000-token quota (95,300 spent):
    what a message sends is its documents' text too."""
    settings.CHAT_DAILY_TOKEN_QUOTA = 20_000
    settings.CHAT_CONTEXT_TOKENS = 128_000  # the model reads such documents
    fake_upstream.behaviour.ttft = 1.0  # the first is still running when the second asks
    first, second = conversation_create(owner=user), conversation_create(owner=user)
    running = answering.begin(conversation=first, user=user, content="summarise", attachment_ids=[
        _document(user, 40).pk
    ])
    assert Turn.objects.get(pk=running.turn_id).quota_reserved >= 40 * 1024 // 3
    with pytest.raises(errors.QuotaExceeded):
        answering.begin(conversation=second, user=user, content="and this", attachment_ids=[_document(user, 40).pk])
    assert not second.turns.exists()
    running.wait()
    # A small message still fits in what is left.
    answering.answer(conversation=second, user=user, content="a short one")
