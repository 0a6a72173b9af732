"""A task for the tests of the background task worker: it leaves a file, so a test in another process sees that it
ran, and where."""

import os
from pathlib import Path

from django_tasks import task


@task()
def leave_mark(path: str) -> int:
    Path(path).write_text(str(os.getpid()))
    return os.getpid()
