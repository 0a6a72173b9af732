"""MCP tools on the page: the site's MCP server's tools listed in the Settings panel, enabled per chat; a server
that is down says why there; a call that needs approval waits until the user allows it in Chromium, then runs; the
step shown folded (name, input, output, time) while the answer is written and after a reload. Screenshots of an MCP
call and of a search answer with its sources, light, dark and phone. The MCP servers are in the conftest: the
working one is conversations/tests/mcp_server.py over stdio."""

import json

import pytest

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"


def open_settings(page):
    """The Settings panel, once the worker has listed its MCP server (the page is not kept waiting for it: the list
    fills in when the server is ready)."""
    page.click(".chat-tools [data-action=toggle-settings]")
    page.wait_for_selector('#mcp-tools input[value="notes__add"]')


def test_an_approval_required_mcp_call_waits_until_allowed_in_the_page(make_page, server, upstream):
    upstream.behaviour.tool_script = [("notes__delete_note", json.dumps({"title": "groceries"}))]
    upstream.behaviour.reply = "Done: the groceries note is deleted."
    page = make_page()
    sign_up(page)
    page.select_option("#model-picker", label="fake-tool-model")
    open_settings(page)
    tools = page.locator('#mcp-tools input[name="mcp_tool"]')
    assert sorted(tools.evaluate_all("els => els.map(e => e.value)")) == [
        "notes__add", "notes__crash", "notes__delete_note", "notes__slow", "notes__whoami"]
    assert not page.locator('#mcp-tools input[value="notes__delete_note"]').is_checked()  # off until enabled
    assert "asks you first" in page.locator("#mcp-tools").inner_text()
    page.check('#mcp-tools input[value="notes__delete_note"]')
    page.click(".chat-tools [data-action=toggle-settings]")
    send_message(page, "Delete my groceries note.")

    # The answer waits: the call and its input are shown with Allow and Refuse; nothing ran yet.
    box = page.wait_for_selector(".tool-approval")
    assert "notes__delete_note" in box.inner_text() and '"groceries"' in box.inner_text()
    assert len(upstream.chat_requests) == 1 and page.locator(".turn-tool").count() == 0
    screenshot(page, "mcp-approval")
    # A reload while the answer waits asks again (the page follows the running answer from its first event).
    page.reload()
    page.wait_for_selector(".tool-approval")
    assert page.locator(".tool-approval").count() == 1
    page.get_by_role("button", name="Allow").click()
    page.wait_for_selector(COMPLETE_ANSWER)
    assert page.locator(".tool-approval").count() == 0

    def check_step():
        step = page.locator(".turn-step")
        assert step.locator(".tool-call summary").inner_text() == "Called the tool notes__delete_note"
        result = page.locator(".turn-tool .tool-result")
        assert not result.evaluate("el => el.open")  # folded
        result.locator("summary").click()
        assert result.locator("pre").inner_text() == "Deleted the note 'groceries'."
        assert " ms" in result.locator("summary").inner_text()
        assert page.locator(COMPLETE_ANSWER).locator(".markdown").inner_text() == upstream.behaviour.reply

    check_step()
    assert upstream.chat_requests[-1].messages[-1]["content"] == "Deleted the note 'groceries'."
    page.reload()
    page.wait_for_selector(COMPLETE_ANSWER)
    check_step()
    # The chat keeps its tools: the box stays ticked after the reload.
    open_settings(page)
    assert page.locator('#mcp-tools input[value="notes__delete_note"]').is_checked()
    assert page.recorder.console_errors == []


def test_a_down_mcp_server_says_why_in_the_settings_panel(make_page, server):
    page = make_page()
    sign_up(page)
    open_settings(page)
    # The conftest's "wiki" server: an allowed address nothing listens on. Its line appears once this worker has
    # tried it (the page asks again while a server is starting), and the other server's tools are there.
    state = page.locator('#mcp-tools .mcp-state[data-server="wiki"]')
    wait_until(page, "document.querySelector('#mcp-tools .mcp-state[data-server=wiki]')?.textContent"
                     ".includes('unavailable') === true")
    assert state.inner_text() == "wiki: unavailable (connection refused), retrying"
    assert page.locator('#mcp-tools input[value^="wiki__"]').count() == 0
    assert page.locator('#mcp-tools input[name="mcp_tool"]').count() == 5
    page.locator("#mcp-tools").scroll_into_view_if_needed()
    screenshot(page, "mcp-server-down")
    assert page.recorder.console_errors == []


@pytest.mark.parametrize("look", ["light", "dark", "phone"])
def test_screenshots_of_an_mcp_call_and_of_a_search_answer(make_page, server, upstream, searxng, look):
    page = make_page(color_scheme="dark" if look == "dark" else "light",
                     **({"width": 390, "height": 844} if look == "phone" else {}))
    sign_up(page)
    page.select_option("#model-picker", label="fake-tool-model")
    open_settings(page)
    page.check('#mcp-tools input[value="notes__add"]')
    page.get_by_label("Web search").check()
    page.click(".chat-tools [data-action=toggle-settings]")

    upstream.behaviour.tool_script = [("notes__add", json.dumps({"a": 1234, "b": 4321}))]
    upstream.behaviour.reply = "1234 + 4321 is **5555**."
    send_message(page, "What is 1234 + 4321?")
    page.wait_for_selector(COMPLETE_ANSWER)
    page.locator(".turn-step .tool-call summary").click()
    page.locator(".turn-tool .tool-result summary").click()
    assert page.locator(".turn-tool .tool-result pre").inner_text() == "1234 + 4321 = 5555"
    screenshot(page, f"mcp-call-{look}")

    searxng.results = [("/pages/otters", "All about otters")]
    upstream.behaviour.tool_script = [("web_search", json.dumps({"query": "otters hold hands"}))]
    upstream.behaviour.reply = "Yes: sea otters hold hands while they sleep [1]."
    send_message(page, "Do otters hold hands?")
    wait_until(page, f"document.querySelectorAll('{COMPLETE_ANSWER} .turn-sources a').length === 1")
    page.locator(COMPLETE_ANSWER).last.scroll_into_view_if_needed()
    screenshot(page, f"web-search-sources-{look}")
    assert page.recorder.console_errors == []
