"""The background task worker's process: run by `manage.py serve` next to the web server, started again whenever
it exits, so a task that crashes its process costs that task, never the web server.

Tasks are Django's task framework (the django-tasks backport): a module defines them with `@task()` and a
service enqueues them (`some_task.enqueue(...)`) inside its own transaction, so a task is queued exactly when
the data it works on is committed. With the database backend (the default) the worker is django-tasks-db's
`db_worker`; with TASKS_BACKEND=rq it is django-rq's `rqworker` with django-tasks-rq's job class, which operators
may also run on other machines (`worker_command()` is the command line).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from chatsite.processes import SupervisedProcess, with_parent_death_signal


def worker_command() -> list[str]:
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    if settings.TASKS_BACKEND == "rq":
        # django-tasks-rq's own job class: rq's default one cannot call a task.
        return [sys.executable, manage, "rqworker", "--job-class", "django_tasks_rq.backend.Job", "default"]
    return [sys.executable, manage, "db_worker", "--interval", str(settings.TASKS_POLL_SECONDS)]


def run_queued_tasks() -> None:
    """Run every task queued so far in this process, then return: the database worker's batch mode. For tests,
    and for `manage.py` scripts that must finish what they queued."""
    call_command("db_worker", batch=True, interval=0, verbosity=0)


class TaskWorkerSupervisor(SupervisedProcess):
    """Runs the task worker and starts it again whenever it exits, until stopped. Both workers finish the task in
    hand on SIGTERM, then exit."""

    name = "task worker"

    def __init__(self, command: list[str] | None = None):
        super().__init__()
        self.command = command or worker_command()

    def spawn(self) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            with_parent_death_signal(self.command),
            stdin=subprocess.DEVNULL, start_new_session=True,  # its log lines go to our stderr
        )
