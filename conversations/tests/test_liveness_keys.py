"""A stored answer's liveness keys are gone, even when a heartbeat was being written as the answer ended.

The watcher vouches for every running answer (writes `chat:running:<turn>`) from a thread; an answer stored while
that write was on its way had its keys cleared first, and the write put its heartbeat back, so a finished answer
looked alive until the key expired (seen in CI as a flaky assertion). The engine now clears the keys once more
after the run has left its running set, and the watcher clears those of answers that ended during its write.
"""

import time

import pytest
from django.core.cache import cache

from conversations import answering
from conversations.answering import liveness
from conversations.models import Turn
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_heartbeat_landing_after_the_answer_is_stored_does_not_leave_it_looking_alive(
    fake_upstream, user, monkeypatch
):
    real_vouch = liveness.vouch

    def late_vouch(turn_ids):
        time.sleep(1.5)  # the heartbeat's write lands after the answer below is stored
        real_vouch(turn_ids)

    monkeypatch.setattr(liveness, "HEARTBEAT_SECONDS", liveness.WATCH_SECONDS)  # a heartbeat at the first watch
    monkeypatch.setattr(liveness, "vouch", late_vouch)
    fake_upstream.behaviour.tokens = 12
    fake_upstream.behaviour.token_delay = 0.1  # the answer runs over the first watch (1 s), then is stored

    conversation = conversation_create(owner=user, title="keys")
    run = answering.answer(conversation=conversation, user=user, content="a short story")
    assert run.assistant_turn.status == Turn.Status.COMPLETE

    time.sleep(4.0)  # past the late heartbeat's write
    assert cache.get(liveness.running_key(run.assistant_turn.pk)) is None
