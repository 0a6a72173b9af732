"""Background responses through the real `openai` client against a live chatsite: `background=True` answers at
once, the answer runs on detached (the answering engine's), and the client polls it, cancels it, or follows its
events, resuming after a sequence number."""

import time
from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from conversations.answering.engine import engine
from conversations.models import Turn
from conversations.services import conversation_create
from conversations.tests.factories import add_turns
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def poll(client, response_id: str, *, until=("completed", "incomplete", "failed", "cancelled"), seconds=15.0):  # noqa: F811
    deadline = time.monotonic() + seconds
    statuses = []
    while True:
        response = client.responses.retrieve(response_id)
        statuses.append(response.status)
        if response.status in until or time.monotonic() > deadline:
            return response, statuses
        time.sleep(0.05)


def test_a_background_response_is_queued_then_polled_to_completion(client, user, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.token_delay = 0.02
    created = client.responses.create(model="fake-model", input="Take your time.", background=True)
    assert created.status == "queued" and created.background is True and created.output == []
    done, statuses = poll(client, created.id)
    assert done.status == "completed" and done.output_text == fake_upstream.behaviour.reply
    assert "in_progress" in statuses  # seen while it ran, as the request had long returned
    assert Turn.objects.get(role="assistant").status == Turn.Status.COMPLETE


def test_a_cancelled_background_response_keeps_its_text_so_far(client, user, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.tokens, fake_upstream.behaviour.token_delay = 400, 0.05
    created = client.responses.create(model="fake-model", input="A long one.", background=True)
    poll(client, created.id, until=("in_progress",))
    time.sleep(0.3)  # a few words in
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    stored = Turn.objects.get(role="assistant")
    assert stored.status == Turn.Status.CANCELLED and 0 < len(stored.content.split()) < 400
    assert client.responses.retrieve(created.id).status == "cancelled"
    assert client.responses.cancel(created.id).status == "cancelled"  # cancelling again changes nothing


def test_cancelling_a_finished_response_returns_it_as_it_is(client, fake_upstream):  # noqa: F811
    done = client.responses.create(model="fake-model", input="Quick.")
    assert client.responses.cancel(done.id).status == "completed"


def test_a_background_stream_is_resumed_after_a_sequence_number(client, user, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.token_delay = 0.02
    created = client.responses.create(model="fake-model", input="Stream it.", background=True)
    whole = list(client.responses.retrieve(created.id, stream=True))
    numbers = [event.sequence_number for event in whole]
    assert numbers == list(range(len(whole))) and whole[-1].type == "response.completed"
    assert "".join(e.delta for e in whole if e.type == "response.output_text.delta") == fake_upstream.behaviour.reply

    resumed = list(client.responses.retrieve(created.id, stream=True, starting_after=5))
    assert [(e.sequence_number, e.type) for e in resumed] == [(e.sequence_number, e.type) for e in whole[6:]]


def test_a_stream_whose_log_is_gone_replays_the_stored_answer(client, user, fake_upstream):  # noqa: F811
    done = client.responses.create(model="fake-model", input="Replay me.")
    engine.logs.pop(int(done.id.removeprefix("resp_")), None)  # as RETAIN_SECONDS after the end
    events = list(client.responses.retrieve(done.id, stream=True))
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed",
    ]
    assert events[4].delta == fake_upstream.behaviour.reply and events[-1].response.status == "completed"


def test_a_background_stream_whose_client_leaves_runs_on(client, user, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.token_delay = 0.02
    stream = client.responses.create(model="fake-model", input="Leave early.", background=True, stream=True)
    first = next(iter(stream))
    assert first.type == "response.created"
    stream.close()
    done, _ = poll(client, first.response.id)
    assert done.status == "completed" and done.output_text == fake_upstream.behaviour.reply


@pytest.mark.parametrize(("status", "upstream_code", "code", "error_type", "words"), [
    (500, None, "upstream_error", "api_error", "HTTP 500"),
    (429, None, "upstream_rate_limited", "rate_limit_error", "rate-limiting"),
    (400, "context_length_exceeded", "context_length_exceeded", "api_error", "too long for the model's context"),
    (400, None, "upstream_rejected", "api_error", "HTTP 400"),
], ids=["upstream-error", "rate-limited", "context-too-long", "rejected"])
def test_a_failed_background_response_polls_with_the_reason(client, settings, fake_upstream,  # noqa: F811
                                                             status, upstream_code, code, error_type, words):
    settings.OPENAI_MAX_RETRIES = 0  # chatsite's own retries change nothing here
    fake_upstream.behaviour.fail_status, fake_upstream.behaviour.fail_code = status, upstream_code
    created = client.responses.create(model="fake-model", input="Fail.", background=True)
    assert created.status == "queued" and created.error is None  # the upstream is asked after the request returned
    failed, _ = poll(client, created.id)
    assert failed.status == "failed"
    assert (failed.error.code, failed.error.type, failed.error.param) == (code, error_type, None)
    assert words in failed.error.message
    assert Turn.objects.get(pk=int(created.id.removeprefix("resp_"))).error_code == code


def test_a_background_response_whose_worker_died_polls_as_interrupted(client, user, fake_upstream):  # noqa: F811
    conversation = conversation_create(owner=user)
    add_turns(conversation, (Turn.Role.USER, "Still there?"))
    # Pending for a minute, with no worker's heartbeat: whoever reads it next finds it abandoned.
    answer = add_turns(conversation, (Turn.Role.ASSISTANT, ""), status=Turn.Status.PENDING, model="fake-model",
                       created_at=timezone.now() - timedelta(minutes=1))
    polled = client.responses.retrieve(f"resp_{answer.pk}")
    assert polled.status == "failed"
    assert (polled.error.code, polled.error.type, polled.error.message) == (
        "interrupted", "api_error", "The answer was interrupted."
    )


def test_a_streamed_response_fails_with_the_same_reason(client, settings, fake_upstream):  # noqa: F811
    settings.OPENAI_MAX_RETRIES = 0
    fake_upstream.behaviour.fail_status = 429
    created = client.responses.create(model="fake-model", input="Fail.", background=True, stream=True)
    events = list(created)
    assert events[-1].type == "response.failed"
    assert (events[-1].response.error.code, events[-1].response.error.type) == (
        "upstream_rate_limited", "rate_limit_error"
    )
    retrieved = client.responses.retrieve(events[-1].response.id)
    assert retrieved.error.to_dict() == events[-1].response.error.to_dict()


def test_an_old_failed_answer_without_a_code_says_server_error(client, user, fake_upstream):  # noqa: F811
    conversation = conversation_create(owner=user)
    add_turns(conversation, (Turn.Role.USER, "Hi"))
    answer = add_turns(conversation, (Turn.Role.ASSISTANT, ""), status=Turn.Status.FAILED, error="It failed.")
    polled = client.responses.retrieve(f"resp_{answer.pk}")
    assert (polled.error.code, polled.error.message) == ("server_error", "It failed.")


def test_background_with_a_bad_conversation_is_refused_before_anything_runs(client, fake_upstream):  # noqa: F811
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="fake-model", input="x", background=True, conversation="conv_nothing")
    assert fake_upstream.chat_requests == []
