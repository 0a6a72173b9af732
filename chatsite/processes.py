"""The child processes `manage.py serve` runs beside uvicorn (the embedded model's server, the task worker): started
with a parent-death signal, watched, and started again whenever they exit, until the service stops.

`SupervisedProcess` is the one restart loop; a subclass says how to start its process and what to record as it
runs (`conversations.model_server.ModelServerSupervisor`, `chatsite.task_worker.TaskWorkerSupervisor`).
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)

# Restart pauses after consecutive quick crashes: 0.5 s doubling to 30 s; a run that lasted a minute resets it.
FIRST_RESTART_PAUSE = 0.5
MAX_RESTART_PAUSE = 30.0
STABLE_RUN_SECONDS = 60.0
WATCH_INTERVAL = 0.2


def with_parent_death_signal(command: list[str]) -> list[str]:
    """Have the kernel stop the child if its parent dies (even by SIGKILL), so no orphan keeps a port or a task.

    util-linux's setpriv sets PR_SET_PDEATHSIG and execs the command; it is on every Debian system.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return command
    return [setpriv, "--pdeathsig", "TERM", "--", *command]


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class SupervisedProcess:
    """Runs a process and starts it again whenever it exits, until stopped.

    Subclasses implement `spawn()` and may override the hooks, which run on the supervising thread:
    `started()` after each start, `watch()` every 0.2 s while it runs, `exited()` after it stopped on its own
    (before the pause), and `stopped()` once, after `stop()` ended it.
    """

    name = "process"
    terminate_timeout = 10.0  # seconds between SIGTERM and SIGKILL

    def __init__(self) -> None:
        self.restarts = 0
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def spawn(self) -> subprocess.Popen:
        raise NotImplementedError

    def started(self) -> None:
        pass

    def watch(self) -> None:
        pass

    def exited(self) -> None:
        pass

    def stopped(self) -> None:
        pass

    def start(self):
        self._thread = threading.Thread(
            target=self._supervise, name=f"{self.name.replace(' ', '-')}-supervisor", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _supervise(self) -> None:
        pause = FIRST_RESTART_PAUSE
        while not self._stopping.is_set():
            began = time.monotonic()
            self.process = self.spawn()
            self.started()
            while self.process.poll() is None and not self._stopping.is_set():
                self.watch()
                self._stopping.wait(WATCH_INTERVAL)
            if self._stopping.is_set():
                break
            self.restarts += 1
            self.exited()
            logger.warning(
                "%s (pid %s) stopped: %s; restarting",
                self.name, self.process.pid, describe_exit(self.process.returncode),
            )
            if time.monotonic() - began > STABLE_RUN_SECONDS:
                pause = FIRST_RESTART_PAUSE
            self._stopping.wait(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE)
        self._terminate()
        self.stopped()

    def _terminate(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(self.terminate_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
