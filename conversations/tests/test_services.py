"""The chat engine through its one service, against the fake upstream over real HTTP."""

import asyncio

import pytest
from django.core.cache import cache
from django.db import connection

from conversations import answering, errors
from conversations.answering.events import AnswerDone, AnswerFailed, merge_tool_call_deltas
from conversations.models import Turn
from conversations.services import conversation_create
from conversations.tests.factories import add_turns

SECRET = "sk-test-SECRET-upstream-key-0123456789"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(user):
    return conversation_create(owner=user, system_prompt="Be brief.")


def test_append_sends_system_prompt_and_history_in_order(fake_upstream, conversation, user, other_user):
    foreign = conversation_create(owner=other_user)
    answering.answer(conversation=foreign, user=other_user, content="bob's secret message")
    answering.answer(conversation=conversation, user=user, content="first question")
    run = answering.answer(conversation=conversation, user=user, content="second question")

    sent = fake_upstream.chat_requests[-1].messages
    answer = fake_upstream.behaviour.reply
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "second question"},
    ]
    assert run.assistant_turn.status == Turn.Status.COMPLETE
    assert run.assistant_turn.content == answer
    assert run.assistant_turn.completion_tokens == len(answer.split(" "))
    assert run.assistant_turn.prompt_tokens > 0
    assert run.assistant_turn.usage_approximate is False
    assert run.assistant_turn.finish_reason == "stop"
    assert list(conversation.turns.values_list("position", "role")) == [
        (1, "user"), (2, "assistant"), (3, "user"), (4, "assistant"),
    ]


def test_site_default_system_prompt_when_conversation_has_none(fake_upstream, user, settings):
    settings.CHAT_DEFAULT_SYSTEM_PROMPT = "Site default."
    conversation = conversation_create(owner=user)
    answering.answer(conversation=conversation, user=user, content="hi")
    assert fake_upstream.chat_requests[-1].messages[0] == {"role": "system", "content": "Site default."}


def test_failed_answers_are_left_out_of_history(fake_upstream, conversation, user):
    fake_upstream.behaviour.fail_status = 400
    fake_upstream.behaviour.fail_count = 1
    with pytest.raises(errors.UpstreamRejected):
        answering.answer(conversation=conversation, user=user, content="first")
    answering.answer(conversation=conversation, user=user, content="second")
    roles = [m["role"] for m in fake_upstream.chat_requests[-1].messages]
    assert roles == ["system", "user", "user"]


def test_no_transaction_is_open_while_the_model_runs(fake_upstream, conversation, user):
    seen = []
    caller_connection = connection  # the thread-local wrapper of this (the caller's) thread
    fake_upstream.on_request = lambda request: seen.append(caller_connection.in_atomic_block)
    answering.answer(conversation=conversation, user=user, content="hi")
    assert seen == [False]


def test_usage_is_counted_approximately_when_upstream_sends_none(fake_upstream, conversation, user):
    fake_upstream.behaviour.include_usage = False
    run = answering.answer(conversation=conversation, user=user, content="hi there")
    assert run.assistant_turn.usage_approximate is True
    assert run.assistant_turn.completion_tokens > 0
    assert run.assistant_turn.prompt_tokens > 0


@pytest.mark.parametrize(
    ("behaviour", "error_class"),
    [
        ({"fail_status": 500}, errors.UpstreamError),
        ({"fail_status": 503}, errors.UpstreamError),
        ({"fail_status": 401}, errors.UpstreamMisconfigured),
        ({"fail_status": 403}, errors.UpstreamMisconfigured),
        ({"fail_status": 429, "retry_after": "7"}, errors.UpstreamRateLimited),
        ({"fail_status": 400}, errors.UpstreamRejected),
        ({"drop_after": 3}, errors.UpstreamStreamBroken),
        ({"malformed_after": 3}, errors.UpstreamStreamBroken),
    ],
)
def test_failures_keep_the_user_turn_and_store_a_safe_error(fake_upstream, conversation, user, behaviour, error_class):
    for name, value in behaviour.items():
        setattr(fake_upstream.behaviour, name, value)
    with pytest.raises(error_class) as caught:
        answering.answer(conversation=conversation, user=user, content="keep me")

    user_turn, answer = conversation.turns.order_by("position")
    assert (user_turn.role, user_turn.content, user_turn.status) == ("user", "keep me", "complete")
    assert answer.status == Turn.Status.FAILED
    assert answer.error and SECRET not in answer.error and "Traceback" not in answer.error
    assert SECRET not in caught.value.message
    if "drop_after" in behaviour or "malformed_after" in behaviour:
        assert answer.content == "Hello from the "  # partial text kept (3 tokens)
    if "retry_after" in behaviour:
        assert caught.value.retry_after == 7

    # Retry answers the same user turn again (no duplicate message); the failed answer stays as a version.
    fake_upstream.behaviour = type(fake_upstream.behaviour)()
    run = answering.answer(conversation=conversation, user=user, regenerate=True)
    assert run.assistant_turn.status == Turn.Status.COMPLETE
    assert conversation.turns.filter(role="user").count() == 1
    assert list(conversation.turns.filter(role="assistant").values_list("parent_id", "status").order_by("id")) == [
        (user_turn.pk, Turn.Status.FAILED), (user_turn.pk, Turn.Status.COMPLETE),
    ]


def test_connection_refused_is_unavailable(settings, conversation, user):
    settings.LLM_BACKEND = "openai"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    settings.OPENAI_MAX_RETRIES = 0
    with pytest.raises(errors.UpstreamUnavailable):
        answering.answer(conversation=conversation, user=user, content="hello?")
    assert conversation.turns.get(position=1).content == "hello?"
    assert conversation.turns.get(position=2).status == Turn.Status.FAILED


def test_timeout(fake_upstream, settings, conversation, user):
    settings.OPENAI_TIMEOUT = 0.5
    fake_upstream.behaviour.hang = True
    with pytest.raises(errors.UpstreamTimeout):
        answering.answer(conversation=conversation, user=user, content="slow")
    assert conversation.turns.get(position=2).status == Turn.Status.FAILED


def test_sdk_retries_server_errors(fake_upstream, settings, conversation, user):
    settings.OPENAI_MAX_RETRIES = 2
    fake_upstream.behaviour.fail_status = 500
    with pytest.raises(errors.UpstreamError):
        answering.answer(conversation=conversation, user=user, content="again")
    assert len(fake_upstream.chat_requests) == 3


def test_regenerate_is_refused_while_an_answer_runs(fake_upstream, conversation, user):
    add_turns(conversation, ("user", "q"))
    add_turns(conversation, ("assistant", ""), status="pending")
    with pytest.raises(errors.ConversationBusy):
        answering.answer(conversation=conversation, user=user, regenerate=True)
    with pytest.raises(errors.ConversationBusy):
        answering.answer(conversation=conversation, user=user, content="another")
    assert fake_upstream.chat_requests == []


def test_context_trimming_keeps_system_and_newest(fake_upstream, settings, conversation, user):
    long_text = "word " * 200  # ~334 approximate tokens each
    add_turns(conversation, *[("user" if i % 2 else "assistant", f"{i} {long_text}") for i in range(1, 201)])
    settings.CHAT_CONTEXT_TOKENS = 2000
    settings.CHAT_MAX_ANSWER_TOKENS = 200
    run = answering.answer(conversation=conversation, user=user, content="newest")
    sent = fake_upstream.chat_requests[-1].messages
    assert sent[0]["content"] == "Be brief."
    assert sent[-1]["content"] == "newest"
    kept_positions = [int(m["content"].split()[0]) for m in sent[1:-1]]
    assert kept_positions == list(range(201 - len(kept_positions), 201))  # the newest, in order
    assert 0 < len(kept_positions) < 10
    assert run.assistant_turn.dropped_turns == 200 - len(kept_positions)
    assert Turn.objects.get(pk=run.assistant_turn.pk).dropped_turns == run.assistant_turn.dropped_turns


def test_quota_refuses_before_calling_the_model(fake_upstream, settings, conversation, user):
    settings.CHAT_DAILY_TOKEN_QUOTA = 5
    answering.answer(conversation=conversation, user=user, content="hi")
    with pytest.raises(errors.QuotaExceeded):
        answering.answer(conversation=conversation, user=user, content="more")
    assert len(fake_upstream.chat_requests) == 1
    assert conversation.turns.count() == 2


def test_title_from_first_message(fake_upstream, user):
    conversation = conversation_create(owner=user)
    answering.answer(
        conversation=conversation, user=user, content="How do I bake a sourdough bread at home without a scale?"
    )
    conversation.refresh_from_db()
    assert conversation.title.startswith("How do I bake")
    assert len(conversation.title) <= 60


def test_title_from_model_when_enabled(fake_upstream, settings, user):
    settings.CHAT_MODEL_TITLES = True
    conversation = conversation_create(owner=user)
    fake_upstream.behaviour.reply = "Greetings and salutations"
    answering.answer(conversation=conversation, user=user, content="hello there, how are you")
    conversation.refresh_from_db()
    assert conversation.title == "Greetings and salutations"
    title_request = fake_upstream.chat_requests[-1]
    assert "hello there, how are you" in title_request.messages[-1]["content"]


def test_model_title_never_overwrites_a_user_rename(fake_upstream, settings, user):
    settings.CHAT_MODEL_TITLES = True
    conversation = conversation_create(owner=user, title="My own name")
    answering.answer(conversation=conversation, user=user, content="hello")
    conversation.refresh_from_db()
    assert conversation.title == "My own name"


def _collect(conversation, user, *, stop_after=None, cancel_after=None):
    async def go():
        answer = await answering.start(conversation=conversation, user=user, content="stream please")
        events = []
        async for entry in answer.follow():
            events.append(entry.event)
            deltas = sum(isinstance(e, answering.AnswerDelta) for e in events)
            if stop_after is not None and deltas == stop_after:
                from asgiref.sync import sync_to_async

                await sync_to_async(answering.stop_conversation)(conversation)
            if cancel_after is not None and deltas == cancel_after:
                answering.stop(answer.turn_id)  # what a /v1 stream does when its client leaves
        return events

    return asyncio.run(go())


def test_stop_keeps_partial_answer_cancelled(fake_upstream, conversation, user):
    fake_upstream.behaviour.tokens = 200
    fake_upstream.behaviour.token_delay = 0.01
    events = _collect(conversation, user, stop_after=3)
    assert isinstance(events[-1], AnswerDone)
    answer = Turn.objects.get(conversation=conversation, position=2)
    assert answer.status == Turn.Status.CANCELLED
    assert answer.content and len(answer.content.split()) < 200
    _wait_for(lambda: fake_upstream.chat_requests[-1].disconnected)


def test_a_stop_requested_from_another_worker_reaches_the_running_answer(fake_upstream, conversation, user):
    """Another worker can only set the stop flag in the shared cache: the answer sees it within about a
    second (STOP_CHECK_SECONDS) and ends cancelled, with its partial text."""
    fake_upstream.behaviour.tokens = 300
    fake_upstream.behaviour.token_delay = 0.02  # 6 s of answer

    async def go():
        answer = await answering.start(conversation=conversation, user=user, content="stream please")
        events = []
        async for entry in answer.follow():
            events.append(entry.event)
            if sum(isinstance(e, answering.AnswerDelta) for e in events) == 1:
                await cache.aset(f"chat:stop:{answer.turn_id}", True)  # as another worker's Stop leaves it
        return events

    events = asyncio.run(go())
    assert isinstance(events[-1], AnswerDone)
    answer = Turn.objects.get(conversation=conversation, position=2)
    assert answer.status == Turn.Status.CANCELLED
    assert 0 < len(answer.content.split()) < 300  # stopped before the end of the answer


def test_client_disconnect_cancels_upstream_and_stores_partial(fake_upstream, conversation, user):
    fake_upstream.behaviour.tokens = 200
    fake_upstream.behaviour.token_delay = 0.01
    _collect(conversation, user, cancel_after=3)
    answer = Turn.objects.get(conversation=conversation, position=2)
    assert answer.status == Turn.Status.CANCELLED
    assert answer.content.startswith("Hello from")
    _wait_for(lambda: fake_upstream.chat_requests[-1].disconnected)


def test_failed_event_in_stream(fake_upstream, conversation, user):
    fake_upstream.behaviour.drop_after = 2
    events = _collect(conversation, user)
    assert isinstance(events[-1], AnswerFailed)
    assert events[-1].assistant_turn.content == "Hello from "


def _wait_for(condition, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_stale_running_answer_is_failed_and_the_chat_goes_on(fake_upstream, conversation, user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from conversations.services import turns_fail_stale

    long_ago = timezone.now() - timedelta(hours=1)
    add_turns(conversation, ("user", "q"), created_at=long_ago)
    add_turns(conversation, ("assistant", ""), status="pending", created_at=long_ago)

    run = answering.answer(conversation=conversation, user=user, content="still there?")
    assert run.assistant_turn.status == Turn.Status.COMPLETE
    assert Turn.objects.get(conversation=conversation, position=2).status == Turn.Status.FAILED

    add_turns(conversation, ("assistant", ""), status="pending", created_at=long_ago)
    assert turns_fail_stale() == 1
    assert not Turn.objects.running().exists()


def test_tool_call_pieces_that_are_not_json_objects_are_skipped():
    """The pieces are the upstream's JSON, unvalidated: one that is no object is skipped, not a crash of the answer."""
    calls = []
    merge_tool_call_deltas(calls, [
        "junk", {"index": 0, "id": "call_1", "function": "junk"},
        {"index": 0, "function": {"name": "get_weather", "arguments": "{}"}},
    ])
    assert calls == [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
