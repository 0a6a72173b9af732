"""Background tasks: queued in the caller's transaction, run by the database worker."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction
from django_tasks import TaskResultStatus

from chatsite.task_worker import run_queued_tasks
from tests.task_support import leave_mark

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_a_task_queued_in_a_transaction_that_rolls_back_never_runs(tmp_path):
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    with pytest.raises(RuntimeError), transaction.atomic():
        leave_mark.enqueue(str(dropped))
        raise RuntimeError("the caller's write failed")
    result = leave_mark.enqueue(str(kept))
    assert result.status == TaskResultStatus.READY

    run_queued_tasks()

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert kept.exists() and not dropped.exists()


def test_with_the_rq_backend_a_queued_task_runs_on_an_rq_worker(tmp_path):
    """TASKS_BACKEND=rq: the queue is on Redis and `worker_command()`'s rqworker runs it (here in burst mode)."""
    redis_url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    mark = tmp_path / "mark"
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings_test", "TASKS_BACKEND": "rq",
        "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }

    def manage(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True,
            timeout=60,
        ).stdout

    manage("migrate", "-v", "0")
    manage("shell", "-c", f"from tests.task_support import leave_mark; leave_mark.enqueue({str(mark)!r})")
    assert not mark.exists()
    worker = manage("shell", "-c", "from chatsite.task_worker import worker_command; print(repr(worker_command()))")
    command = ast.literal_eval(worker.strip().splitlines()[-1])
    assert command[2:4] == ["rqworker", "--job-class"]
    subprocess.run(
        [*command, "--burst"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60,
    )
    assert mark.exists()
