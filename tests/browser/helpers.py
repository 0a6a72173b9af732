"""Steps the browser tests share: sign up, send a message, take a screenshot, run the task worker once."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "a-Strong-passw0rd!"
HOME_URL = re.compile(r"^http://127\.0\.0\.1:\d+/$")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]


def launch_chromium(playwright):
    """Debian's chromium with the flags this machine needs. Missing chromium fails the test, never skips it."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)

_user_numbers = iter(range(1, 10_000))


def sign_up(page, username: str | None = None) -> str:
    username = username or f"user{os.getpid()}x{next(_user_numbers)}"
    page.goto("/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(HOME_URL)
    page.wait_for_selector("#composer-input")
    return username


def send_message(page, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression with page.evaluate: Playwright's wait_for_function needs eval, which our CSP forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.05)


def run_task_worker(server) -> None:
    """The database task worker, once through the queue, on the server's database and storage."""
    subprocess.run([sys.executable, "manage.py", "db_worker", "--batch", "--interval", "0"], cwd=ROOT,
                   env=server.env, check=True, capture_output=True, timeout=60)
