"""Housekeeping: what it deletes (temporary chats past their time, files never sent for a day) and what it keeps;
the timer that runs it (at start, then again and again; a failing run is logged and the timer goes on)."""

import io
import logging
import os
import sys
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from conversations.attachments import UNSENT_FILE_HOURS, attachment_create, bind
from conversations.housekeeping import PeriodicCommand
from conversations.models import Attachment, Conversation
from conversations.tests.factories import add_turns


def _wait_for(predicate, what: str, timeout: float = 60):
    """Poll until `predicate()`: a wait for an event, not a measurement (the assertions count)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _file(owner, name: str, *, age: timedelta) -> Attachment:
    attachment = attachment_create(owner=owner, upload=SimpleUploadedFile(name, b"some text"))
    Attachment.objects.filter(pk=attachment.pk).update(created_at=timezone.now() - age)
    return attachment


@pytest.mark.django_db(transaction=True)  # files leave the storage when the deletion commits
def test_housekeeping_deletes_what_is_past_its_time_and_keeps_the_rest(user):
    now = timezone.now()
    expired = Conversation.objects.create(owner=user, title="expired", delete_after=now - timedelta(minutes=1))
    add_turns(expired, ("user", "forget me"))
    Conversation.objects.create(owner=user, title="running", delete_after=now + timedelta(hours=1))
    kept = Conversation.objects.create(owner=user, title="kept")
    old_unsent = _file(user, "old-draft.txt", age=timedelta(hours=UNSENT_FILE_HOURS, minutes=1))
    fresh_unsent = _file(user, "fresh-draft.txt", age=timedelta(hours=UNSENT_FILE_HOURS - 1))
    old_sent = _file(user, "sent.txt", age=timedelta(days=30))
    bind([old_sent], add_turns(kept, ("user", "with a file")))
    old_path = old_unsent.file.path

    out = io.StringIO()
    call_command("housekeeping", stdout=out)
    assert out.getvalue() == "Deleted 1 temporary chat(s), 1 unsent file(s).\n"
    assert set(Conversation.objects.values_list("title", flat=True)) == {"running", "kept"}
    assert set(Attachment.objects.all()) == {fresh_unsent, old_sent}
    assert not os.path.exists(old_path)  # the bytes went with the row

    call_command("housekeeping", stdout=(again := io.StringIO()))
    assert again.getvalue() == "Deleted 0 temporary chat(s), 0 unsent file(s).\n"


def test_the_timer_runs_at_start_and_then_every_interval(tmp_path):
    runs = tmp_path / "runs"
    command = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write('run\\n'); print('did a run')"]
    timer = PeriodicCommand(command, interval=0.01, name="counting").start()
    try:
        _wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 3, "three runs")
    finally:
        timer.stop()
    done = len(runs.read_text().splitlines())
    assert done >= 3 and timer.failures == 0
    assert timer.runs in (done, done + 1)  # + the run stop() ended, if it had not written yet


def test_the_first_run_is_at_start_and_the_next_only_after_the_interval(tmp_path):
    runs = tmp_path / "runs"
    command = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write('run\\n')"]
    timer = PeriodicCommand(command, interval=3600, name="hourly").start()
    try:
        _wait_for(lambda: timer.runs == 1, "the first run")
    finally:
        timer.stop()
    assert runs.read_text() == "run\n" and timer.runs == 1


def test_a_failing_run_is_logged_and_the_timer_goes_on(tmp_path, caplog):
    command = [sys.executable, "-c", "import sys; print('partial'); sys.exit(3)"]
    timer = PeriodicCommand(command, interval=0.01, name="failing")
    with caplog.at_level(logging.INFO, logger="conversations.housekeeping"):
        timer.start()
        try:
            _wait_for(lambda: timer.failures >= 2, "two failed runs")
        finally:
            timer.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) >= 2 and errors[0] == "failing failed (exit status 3); next run in 0.01 s"

    missing = PeriodicCommand([str(tmp_path / "no-such-program")], interval=3600, name="missing")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="conversations.housekeeping"):
        assert missing.run_once() is False  # could not even start: logged, not raised
    assert missing.failures == 1
    assert [r.levelno for r in caplog.records if r.getMessage().startswith("missing ")] == [logging.ERROR]
