"""Upkeep the service does on its own: what is deleted when its time is up (the housekeeping command also queues the
embedding of knowledge passages an embeddings outage left without vectors), and the timer in `manage.py serve`
that runs `manage.py housekeeping` (at start, then every CHAT_HOUSEKEEPING_SECONDS).

The timer lives in the supervisor, never in web workers: with several workers it still runs once per interval.
Each run is a process of its own, exactly what a cron line runs, so a failure (a database down, a bug) is logged
and the next run tries again; it never takes the supervisor or the web server with it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings

from chatsite import processes
from conversations.attachments import unsent_attachments_delete
from conversations.organizing import temporary_chats_delete_expired

logger = logging.getLogger(__name__)

RUN_TIMEOUT_SECONDS = 15 * 60  # a run still going after this is stopped (a lock held elsewhere, a hung storage)


def housekeeping() -> dict[str, int]:
    """Delete what is past its time: temporary chats (CHAT_TEMPORARY_HOURS after they start) and files uploaded
    but never sent (attachments.UNSENT_FILE_HOURS). How many of each went."""
    return {
        "temporary chat(s)": temporary_chats_delete_expired(),
        "unsent file(s)": unsent_attachments_delete(),
    }


def housekeeping_command() -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "housekeeping"]


class PeriodicCommand:
    """Runs a command now, then `interval` seconds after each run ends, until stopped; each run is logged."""

    def __init__(self, command: list[str], *, interval: float, name: str = "housekeeping"):
        self.command = command
        self.interval = interval
        self.name = name
        self.runs = 0
        self.failures = 0
        self._stopping = threading.Event()
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PeriodicCommand:
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-timer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self._stopping.wait(self.interval)

    def run_once(self) -> bool:
        """One run: its summary logged, or its failure; never raises. Whether it succeeded."""
        try:
            self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                processes.with_parent_death_signal(self.command),
                stdout=subprocess.PIPE, text=True, start_new_session=True,  # its log lines go to our stderr
            )
            try:
                output, _ = self._process.communicate(timeout=RUN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.error("%s still running after %s s: stopped", self.name, RUN_TIMEOUT_SECONDS)
                self._process.kill()
                output, _ = self._process.communicate()
            returncode = self._process.returncode
        except Exception:  # the supervisor goes on whatever happened (an OSError starting it, ...)
            logger.exception("%s could not run", self.name)
            returncode, output = None, ""
        self.runs += 1
        if returncode == 0:
            for line in output.splitlines():
                logger.info("%s: %s", self.name, line)
            return True
        if self._stopping.is_set():
            return False  # stopped by us, with the service
        self.failures += 1
        if returncode is not None:
            logger.error(
                "%s failed (%s); next run in %s s", self.name, processes.describe_exit(returncode), self.interval
            )
        return False
