"""Web search on the page: the chat's switch in the Settings panel, and an answer's sources as links after it
(while it is written and after a reload). The server's search service is the fake SearXNG on 127.0.0.1."""

import json

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"


def test_a_chat_with_web_search_on_shows_the_answers_sources(make_page, server, upstream, searxng):
    searxng.results = [("/pages/otters", "All about otters")]
    upstream.behaviour.tool_script = [("web_search", json.dumps({"query": "otters hold hands"}))]
    upstream.behaviour.reply = "Yes: sea otters hold hands while they sleep [1]."
    page = make_page()
    sign_up(page)
    page.select_option("#model-picker", label="fake-tool-model")
    page.click(".chat-tools [data-action=toggle-settings]")
    switch = page.get_by_label("Web search")
    assert not switch.is_checked()  # off by default
    switch.check()
    send_message(page, "Do otters hold hands?")
    page.wait_for_selector(COMPLETE_ANSWER)

    def check_sources():
        links = page.locator(f"{COMPLETE_ANSWER} .turn-sources a")
        wait_until(page, f"document.querySelectorAll('{COMPLETE_ANSWER} .turn-sources a').length === 1")
        assert links.inner_text() == "All about otters"
        assert links.get_attribute("href") == f"{searxng.base_url}/pages/otters"
        assert links.get_attribute("rel") == "noopener noreferrer nofollow"
        assert upstream.chat_requests[-1].messages[-1]["content"].startswith("[1] All about otters\n")

    check_sources()
    screenshot(page, "web-search-sources")
    page.reload()
    page.wait_for_selector(COMPLETE_ANSWER)
    check_sources()

    # Turned off on the existing chat: saved at once, and the next message offers no web search.
    page.click(".chat-tools [data-action=toggle-settings]")
    assert page.get_by_label("Web search").is_checked()
    page.get_by_label("Web search").uncheck()
    wait_until(page, "document.getElementById('settings-status').textContent !== ''")
    upstream.behaviour.tool_script = []
    send_message(page, "And without searching?")
    wait_until(page, f"document.querySelectorAll('{COMPLETE_ANSWER}').length === 2")
    offered = {tool["function"]["name"] for tool in upstream.chat_requests[-1].body.get("tools", [])}
    assert "web_search" not in offered
    page.reload()
    page.click(".chat-tools [data-action=toggle-settings]")
    assert not page.get_by_label("Web search").is_checked()
    assert page.recorder.console_errors == []
