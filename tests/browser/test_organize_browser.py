"""Organizing in Chromium: pins and projects (the page's folders) from the row menu, a temporary chat, message times,
the keyboard shortcuts and their help, and the user's data (export everything, delete the account)."""

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.browser.helpers import PASSWORD, screenshot, send_message, sign_up, wait_until

ROOT = Path(__file__).resolve().parents[2]

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def make_chats(page, titles):
    token = page.input_value("input[name=csrfmiddlewaretoken] >> nth=0")
    ids = []
    for title in titles:
        response = page.request.post("/api/v1/conversations/", data={"title": title}, headers={"X-CSRFToken": token})
        ids.append(response.json()["id"])
    return ids


def row_action(page, chat_id, action):
    item = page.locator(f".history-item[data-id='{chat_id}']")
    item.locator("summary").click()
    item.locator(f"[data-action={action}]").click()


def test_pin_and_file_chats_from_the_row_menu(make_page, server, upstream):
    for scheme in ("light", "dark"):
        page = make_page(color_scheme=scheme)
        sign_up(page)
        ids = make_chats(page, ["Groceries", "Trip to Busan", "Tax return"])
        page.reload()
        row_action(page, ids[0], "pin")  # the oldest, pinned: now first, under "Pinned"
        page.wait_for_selector(f".history-item[data-pinned='1'][data-id='{ids[0]}']")
        assert page.locator(".history-item").first.get_attribute("data-id") == ids[0]
        assert page.locator("#history .history-group").first.inner_text() == "Pinned"

        row_action(page, ids[1], "move")
        page.wait_for_selector("#folder-dialog[open]")
        page.fill("#folder-new", "Travel")
        page.click("#folder-dialog button[value=ok]")
        page.wait_for_selector(".folder-row >> text=Travel")
        wait_until(page, f"document.querySelector(\".history-item[data-id='{ids[1]}']\")?.dataset.folder !== ''")
        page.reload()
        page.click(".folder-btn >> text=Travel")
        wait_until(page, "document.querySelectorAll('.history-item').length === 1")
        assert page.locator(".history-item").first.get_attribute("data-id") == ids[1]
        screenshot(page, f"folders-{scheme}")
    page.click(".folder-btn >> text=Travel")  # pressed again: the main list, without the project's chat
    wait_until(page, "document.querySelectorAll('.history-item').length === 2")

    row_action(page, ids[0], "pin")  # unpinned
    wait_until(page, "document.querySelectorAll('.history-item[data-pinned=\"1\"]').length === 0")

    # Deleting the project asks whether its chats go too: Cancel keeps them, back in the main list.
    page.locator(".folder-row").hover()
    page.click(".folder-row [data-action=delete-folder]")
    page.click("#dialog-ok")
    wait_until(page, "document.getElementById('dialog-message').textContent.includes('chats in this project')")
    page.wait_for_selector("#dialog[open]")
    page.click("#dialog-cancel")
    page.wait_for_selector(".folder-row", state="detached")
    wait_until(page, "document.querySelectorAll('.history-item').length === 3")


def test_a_temporary_chat_stays_out_of_the_history(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)
    page.click("[data-action=toggle-temporary]")
    assert page.locator("#temporary-note").is_visible()
    screenshot(page, "temporary-chat")
    send_message(page, "Nobody needs to see this")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert page.locator(".history-item").count() == 0
    page.reload()
    assert page.locator(".history-item").count() == 0
    assert page.locator("#temporary-note").is_visible()
    rows = server.db.query(
        "SELECT c.delete_after IS NOT NULL FROM conversations_conversation c JOIN accounts_user u "
        "ON u.id = c.owner_id WHERE u.username = %s", (username,))
    assert rows == [(True,)]


def test_times_shortcuts_and_their_help(make_page, server, upstream):
    upstream.behaviour.reply = "Copy me, please."
    page = make_page()
    sign_up(page)
    send_message(page, "What time is it?")
    page.wait_for_selector(COMPLETE_ANSWER)
    times = page.locator("time.turn-time")
    wait_until(page, "document.querySelectorAll('time.turn-time').length === 2")
    assert times.first.inner_text() in ("now", "1 second ago") or "second" in times.first.inner_text()
    assert re.search(r"\d{4}", times.first.get_attribute("title"))  # the exact time on hover

    page.keyboard.press("Control+/")
    page.wait_for_selector("#shortcuts-dialog[open]")
    assert "Copy the last answer" in page.locator("#shortcuts-dialog").inner_text()
    screenshot(page, "shortcuts")
    page.keyboard.press("Escape")
    page.wait_for_selector("#shortcuts-dialog:not([open])", state="attached")

    page.keyboard.press("Control+K")
    assert page.evaluate("document.activeElement.id") == "history-search"
    page.keyboard.press("Shift+Escape")
    assert page.evaluate("document.activeElement.id") == "composer-input"
    page.keyboard.press("Control+Shift+Semicolon")
    wait_until(page, "navigator.clipboard.readText().then((t) => t === 'Copy me, please.')")

    upstream.behaviour.token_delay = 0.2
    send_message(page, "A long one")
    page.wait_for_selector(".turn-assistant.status-streaming")
    page.keyboard.press("Control+Shift+X")
    page.wait_for_selector(".turn-assistant[data-status=cancelled]")

    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))


def test_export_all_my_data_then_delete_the_account(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)
    send_message(page, "Export me")
    page.wait_for_selector(COMPLETE_ANSWER)
    page.goto("/accounts/profile/")
    screenshot(page, "profile-your-data", full_page=True)
    with page.expect_download() as download_info:
        page.click("#your-data a[download]")
    archive = zipfile.ZipFile(io.BytesIO(download_info.value.path().read_bytes()))
    chats = json.loads(archive.read("chats.json"))["chats"]
    assert [turn["content"] for turn in chats[0]["turns"]][0] == "Export me"

    page.recorder.accept_dialogs = True
    page.fill("#delete-password", "wrong password")
    page.click("#your-data button.btn-danger")
    page.wait_for_selector("text=That password is not right")
    page.fill("#delete-password", PASSWORD)
    page.click("#your-data button.btn-danger")
    page.wait_for_url("**/accounts/signup/")
    assert page.locator("text=All its data is being deleted in the background").is_visible()
    assert page.locator("h1").inner_text() == "Create your account"  # not "Welcome back"
    # Closed at once; its data goes in the background task, run here as `manage.py serve`'s worker would.
    assert server.db.query("SELECT is_active FROM accounts_user WHERE username = %s", (username,)) in (
        [(False,)], [(0,)]
    )
    worker_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings_test", "DATABASE_URL": server.db.url}
    subprocess.run([sys.executable, "manage.py", "db_worker", "--batch", "--interval", "0", "-v", "0"],
                   cwd=ROOT, env=worker_env, check=True, timeout=120)
    assert server.db.query("SELECT count(*) FROM accounts_user WHERE username = %s", (username,)) == [(0,)]
