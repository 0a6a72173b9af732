"""The chat in a real Chromium: streaming, history, rename/search/export/delete, stop, failures, drafts."""

import json
import re

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

# Records the length of the streaming answer's text each time it changes (set up before sending).
WATCH_STREAM = """() => {
  window.__partials = [];
  new MutationObserver(() => {
    const el = document.querySelector('.turn-assistant.status-streaming .streaming-text');
    if (el && el.textContent && !el.querySelector('.thinking')) window.__partials.push(el.textContent.length);
  }).observe(document.getElementById('turns'), {subtree: true, childList: true, characterData: true});
}"""

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def last_assistant_row(server, username):
    return server.db.query(
        "SELECT t.status, t.content, t.id FROM conversations_turn t "
        "JOIN conversations_conversation c ON c.id = t.conversation_id "
        "JOIN accounts_user u ON u.id = c.owner_id "
        "WHERE u.username = %s AND t.role = 'assistant' ORDER BY t.created_at DESC, t.id DESC",
        (username,),
    )[0]


def test_send_stream_reload_rename_search_export_delete(make_page, server, upstream, tmp_path):
    upstream.behaviour.reply = "Here is **bold** text and a list:\n\n- one\n- two\n\n```python\nprint('hi')\n```"
    upstream.behaviour.token_delay = 0.05
    page = make_page()
    page.goto("/")
    page.wait_for_selector("#id_username")  # anonymous: the login page
    screenshot(page, "login")
    username = sign_up(page)

    page.evaluate(WATCH_STREAM)
    send_message(page, "Tell me about streaming")
    page.wait_for_selector(".turn-user >> text=Tell me about streaming")
    assert page.is_visible("#composer-stop")  # while the answer streams, Stop replaces Send
    page.wait_for_selector(COMPLETE_ANSWER)

    partials = page.evaluate("window.__partials")
    growing = sorted(set(partials))
    assert len(growing) >= 2, f"the answer arrived in one piece: {partials}"
    answer = page.locator(COMPLETE_ANSWER)
    assert answer.locator(".markdown strong").inner_text() == "bold"
    assert answer.locator(".markdown li").count() == 2
    assert answer.locator(".code-block .copy-code").count() == 1
    assert answer.locator("pre .nb").inner_text() == "print"  # Pygments classes
    assert re.search(r"\d+ tokens", answer.locator(".turn-usage").inner_text())
    assert re.fullmatch(r".*/c/[0-9a-f-]{36}/", page.url)
    assert not page.is_disabled("#composer-input")
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[1]
    # The title appears without a reload, in the header and the sidebar.
    wait_until(page, "document.getElementById('chat-title').textContent === 'Tell me about streaming'")
    page.wait_for_selector(f".history-item.is-active[data-id='{conversation_id}']")
    screenshot(page, "desktop-light")

    # Copy buttons put the text on the clipboard.
    answer.locator(".copy-code").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print('hi')\n"

    # Feedback is stored.
    answer.locator("[data-action=feedback][data-rating='1']").click()
    page.wait_for_selector(f"{COMPLETE_ANSWER} [data-rating='1'][aria-pressed=true]")

    page.reload()
    item = page.locator(f".history-item[data-id='{conversation_id}']")
    assert item.locator(".history-link").inner_text() == "Tell me about streaming"
    assert "is-active" in item.get_attribute("class")
    assert page.locator(".turn-user").inner_text().startswith("Tell me about streaming")
    assert page.locator(".turn-assistant .markdown strong").inner_text() == "bold"
    assert page.locator("[data-rating='1'][aria-pressed=true]").count() == 1
    assert page.locator("#chat-title").inner_text() == "Tell me about streaming"

    # Rename from the sidebar menu.
    item.locator("summary").click()
    item.locator("[data-action=rename]").click()
    page.fill("#dialog-input", "Streaming notes")
    screenshot(page, "rename-dialog")
    page.press("#dialog-input", "Enter")
    page.wait_for_selector(f".history-item[data-id='{conversation_id}'] >> text=Streaming notes")
    assert page.locator("#chat-title").inner_text() == "Streaming notes"

    # Search finds it by title and by turn text, and not by something else.
    page.fill("#history-search", "notes")
    page.wait_for_selector(f".history-item[data-id='{conversation_id}']")
    page.fill("#history-search", "zzz-not-there")
    page.wait_for_selector(".history-empty")
    page.fill("#history-search", "about streaming")
    page.wait_for_selector(f".history-item[data-id='{conversation_id}']")

    # Export downloads valid Markdown and JSON.
    page.click("#export-links summary")
    with page.expect_download() as download_info:
        page.click("#export-md")
    markdown = download_info.value.path().read_text(encoding="utf-8")
    assert "Streaming notes" in markdown and "Tell me about streaming" in markdown and "**bold**" in markdown
    page.click("#export-links summary")
    with page.expect_download() as download_info:
        page.click("#export-json")
    exported = json.loads(download_info.value.path().read_text(encoding="utf-8"))
    assert exported["title"] == "Streaming notes"
    assert [turn["role"] for turn in exported["turns"]] == ["user", "assistant"]

    # Delete, with a confirmation: back to a new chat, and the row is gone.
    page.fill("#history-search", "")
    item = page.locator(f".history-item[data-id='{conversation_id}']")
    item.locator("summary").click()
    item.locator("[data-action=delete]").click()
    page.click("#dialog-ok")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    assert page.locator(f".history-item[data-id='{conversation_id}']").count() == 0
    assert server.db.query(
        "SELECT COUNT(*) FROM conversations_conversation c JOIN accounts_user u ON u.id = c.owner_id "
        "WHERE u.username = %s", (username,)
    ) == [(0,)]
    assert page.recorder.console_errors == []
    assert page.recorder.offsite_requests(server.url) == []


def test_stop_keeps_a_cancelled_partial_answer(make_page, server, upstream):
    upstream.behaviour.tokens = 200
    upstream.behaviour.token_delay = 0.05
    page = make_page()
    username = sign_up(page)
    send_message(page, "Write a long story")
    wait_until(page, "(document.querySelector('.streaming-text')?.textContent || '').length > 20")
    page.click("#composer-stop")
    page.wait_for_selector(".turn-assistant[data-status=cancelled]")
    assert "Stopped" in page.locator(".turn-assistant").inner_text()
    status, content, _ = last_assistant_row(server, username)
    assert status == "cancelled"
    assert 0 < len(content.split()) < 200
    assert not page.is_disabled("#composer-input")
    # The stopped answer can be regenerated.
    upstream.behaviour.tokens = 5
    upstream.behaviour.token_delay = 0
    page.click(".turn-assistant [data-action=regenerate]")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert last_assistant_row(server, username)[0] == "complete"


def test_failed_answer_shows_retry_and_retry_works(make_page, server, upstream):
    upstream.behaviour.fail_status = 500
    upstream.behaviour.fail_count = 1
    page = make_page()
    username = sign_up(page)
    send_message(page, "Will this fail?")
    failed = page.wait_for_selector(".turn-assistant[data-status=failed]")
    assert page.locator(".turn-user").inner_text().startswith("Will this fail?")
    assert "The answer failed." in failed.inner_text()
    assert last_assistant_row(server, username)[0] == "failed"

    page.click(".turn-assistant .action-retry")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert page.locator(".turn-assistant").count() == 1
    assert page.locator(".turn-user").count() == 1
    assert last_assistant_row(server, username)[0] == "complete"


def test_a_dropped_stream_shows_the_partial_answer_and_retry(make_page, server, upstream):
    upstream.behaviour.reply = "one two three four five six seven eight"
    upstream.behaviour.drop_after = 3
    page = make_page()
    sign_up(page)
    send_message(page, "Drop please")
    failed = page.wait_for_selector(".turn-assistant[data-status=failed]")
    assert failed.query_selector(".markdown").inner_text().startswith("one two")
    upstream.behaviour.drop_after = None
    page.click(".turn-assistant .action-retry")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert "eight" in page.locator(COMPLETE_ANSWER).inner_text()


def test_edit_last_message_and_regenerate(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)
    send_message(page, "First version")
    page.wait_for_selector(COMPLETE_ANSWER)
    user_turn = page.locator(".turn-user")
    user_turn.hover()
    user_turn.locator("[data-action=edit]").click()
    page.fill(".turn-editor textarea", "Second version")
    upstream.behaviour.reply = "An answer to the edited message."
    page.click(".turn-editor button[type=submit]")
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text=An answer to the edited message.")
    assert page.locator(".turn-user .turn-body").inner_text() == "Second version"
    assert upstream.chat_requests[-1].messages[-1] == {"role": "user", "content": "Second version"}
    page.reload()
    assert page.locator(".turn-user .turn-body").inner_text() == "Second version"
    assert page.locator(".turn").count() == 2
    assert last_assistant_row(server, username)[1] == "An answer to the edited message."


def test_an_unsent_draft_survives_reload_and_logging_in_again(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)
    page.fill("#composer-input", "half-written thought\nsecond line")
    page.reload()
    assert page.input_value("#composer-input") == "half-written thought\nsecond line"
    page.click(".logout-form button")
    page.wait_for_url("**/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "a-Strong-passw0rd!")
    page.click("form.form button[type=submit]")
    page.wait_for_selector("#composer-input")
    assert page.input_value("#composer-input") == "half-written thought\nsecond line"
    # Shift+Enter adds a line; Enter sends and clears the draft.
    page.press("#composer-input", "Shift+Enter")
    assert page.input_value("#composer-input").endswith("\n")
    page.press("#composer-input", "Enter")
    page.wait_for_selector(COMPLETE_ANSWER)
    page.reload()
    assert page.input_value("#composer-input") == ""


def test_per_conversation_system_prompt(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    page.click("[data-action=toggle-settings]")
    page.fill("#setting-system-prompt", "Answer like a pirate.")
    page.click("#chat-settings button[type=submit]")
    send_message(page, "Hello")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert upstream.chat_requests[-1].messages[0] == {"role": "system", "content": "Answer like a pirate."}
    page.reload()
    assert page.input_value("#setting-system-prompt") == "Answer like a pirate."


def test_archive_and_unarchive(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    send_message(page, "Keep this for later")
    page.wait_for_selector(COMPLETE_ANSWER)
    page.wait_for_selector(".history-item.is-active")
    item = page.locator(".history-item.is-active")
    item.locator("summary").click()
    item.locator("[data-action=archive]").click()
    page.wait_for_selector(".history-item", state="detached")
    page.click(".history-tab[data-archived='1']")
    archived = page.wait_for_selector(".history-item[data-archived='1']")
    assert archived.inner_text().startswith("Keep this for later")
    page.click(".history-item[data-archived='1'] summary")
    page.click(".history-item[data-archived='1'] [data-action=archive]")
    page.wait_for_selector(".history-item", state="detached")
    page.click(".history-tab[data-archived='0']")
    page.wait_for_selector(".history-item[data-archived='0']")


def test_history_loads_more_on_scroll(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    token = page.input_value("input[name=csrfmiddlewaretoken] >> nth=0")
    for number in range(65):
        response = page.request.post(
            "/api/v1/conversations/", data={"title": f"Chat number {number}"}, headers={"X-CSRFToken": token}
        )
        assert response.ok, response.text()
    page.reload()
    assert page.locator(".history-item").count() == 50
    page.locator(".history-item").last.scroll_into_view_if_needed()
    wait_until(page, "document.querySelectorAll('.history-item').length === 65")
    titles = page.locator(".history-link").all_inner_texts()
    assert titles[0] == "Chat number 64" and titles[-1] == "Chat number 0"
    assert len(set(titles)) == 65
    assert page.locator(".history-group").count() == 1  # one "Today" heading, not one per page
    assert page.locator(".history-more").count() == 0


def test_a_connection_cut_between_browser_and_server_resumes_the_answer(make_page, server, upstream):
    """The browser's stream ends after a few words with no `done` event (as when the network drops): the page
    picks the answer up again after the last event it saw (Last-Event-ID), with no gap and no repeat."""
    upstream.behaviour.reply = "alpha beta gamma delta epsilon zeta eta theta"
    upstream.behaviour.token_delay = 0.05
    page = make_page()
    sign_up(page)

    def cut_stream(route):
        response = route.fetch()
        events = response.text().split("\n\n")
        first_deltas = [event for event in events if "event: delta" in event][:3]
        kept = [event for event in events if "event: turn" in event] + first_deltas
        route.fulfill(response=response, body="\n\n".join(kept) + "\n\n")

    page.route("**/api/v1/conversations/*/turns/", cut_stream)
    send_message(page, "Tell me the Greek letters")
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text=theta")
    answer = page.locator(".turn-assistant")
    assert answer.locator(".markdown").inner_text().strip() == upstream.behaviour.reply
    assert page.locator(".turn-assistant").count() == 1 and page.locator(".turn-error").count() == 0
    assert len(upstream.chat_requests) == 1


def test_long_conversations_show_earlier_messages_on_demand(make_page, server, upstream):
    upstream.behaviour.reply = "ok"
    page = make_page()
    sign_up(page)
    token = page.input_value("input[name=csrfmiddlewaretoken] >> nth=0")
    headers = {"X-CSRFToken": token}
    conversation = page.request.post("/api/v1/conversations/", data={"title": "Long"}, headers=headers).json()
    for number in range(1, 52):
        response = page.request.post(
            f"/api/v1/conversations/{conversation['id']}/turns/", data={"content": f"message {number}"}, headers=headers
        )
        assert response.ok, response.text()
    page.goto(f"/c/{conversation['id']}/")
    # The page opens on the newest 40 turns (messages 32-51 and their answers); the other 62 come on demand.
    assert page.locator(".turn").count() == 40
    assert page.locator(".turn-user .turn-body").first.inner_text() == "message 32"
    page.click(".turns-earlier")
    wait_until(page, "document.querySelectorAll('.turn').length === 102")
    assert page.locator(".turns-earlier").count() == 0
    assert page.locator(".turn-user .turn-body").first.inner_text() == "message 1"


def test_a_refused_message_goes_back_to_the_composer_with_the_error(make_page, server, upstream):
    """The server refuses before storing anything (here a 429 quota answer): nothing half-shown, nothing lost."""
    page = make_page()
    sign_up(page)
    refusal = {"error": {"code": "quota_exceeded", "message": "Daily token quota reached. It resets at midnight."}}
    page.route(
        "**/api/v1/conversations/*/turns/",
        lambda route: route.fulfill(status=429, content_type="application/json", body=json.dumps(refusal)),
    )
    send_message(page, "Please answer this")
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    assert page.locator("#composer-error").inner_text() == "Daily token quota reached. It resets at midnight."
    assert page.locator(".turn").count() == 0
    assert page.input_value("#composer-input") == "Please answer this"
    assert not page.is_disabled("#composer-input")
    assert upstream.chat_requests == []
