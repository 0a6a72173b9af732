"""Answers run on the server: a reload mid-answer picks the stream up again, and a second tab follows live."""

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"
STREAMED_WORDS = "(document.querySelector('.turn-assistant .streaming-text')?.textContent || '').split(' ').length"


def test_a_reload_mid_answer_shows_the_stream_continuing_then_the_stored_text(make_page, server, upstream):
    upstream.behaviour.tokens = 80
    upstream.behaviour.token_delay = 0.05
    page = make_page()
    sign_up(page)
    send_message(page, "Write a long story")
    wait_until(page, f"{STREAMED_WORDS} > 5")
    page.reload()  # the old page's stream is gone; the answer goes on on the server
    wait_until(page, "!!document.querySelector('.turn-assistant .streaming-text')")
    wait_until(page, f"{STREAMED_WORDS} > 20", timeout=20)  # live again after the reload
    # The sidebar marks the chat whose answer is still being written.
    assert page.locator(".history-item .running-dot").count() == 1
    # Typing while the answer is written is allowed; sending waits, with a clear word.
    page.fill("#composer-input", "a follow-up typed meanwhile")
    page.press("#composer-input", "Enter")
    assert "still being written" in page.locator("#composer-error").inner_text()
    assert page.input_value("#composer-input") == "a follow-up typed meanwhile"
    screenshot(page, "answer-resumed-after-reload")
    page.wait_for_selector(COMPLETE_ANSWER, timeout=20_000)
    text = page.locator(f"{COMPLETE_ANSWER} .markdown").inner_text()
    assert len(text.split()) == 80  # the whole answer, not the part before the reload
    assert len(upstream.chat_requests) == 1  # one answer: the reload did not start another
    assert page.recorder.console_errors == []


def test_a_second_tab_follows_the_answer_live(make_page, server, upstream):
    upstream.behaviour.tokens = 60
    upstream.behaviour.token_delay = 0.05
    first = make_page()
    sign_up(first)
    send_message(first, "Tell me about the sea")
    wait_until(first, f"{STREAMED_WORDS} > 3")
    second = first.context.new_page()
    second.goto(first.url)
    wait_until(second, f"{STREAMED_WORDS} > 10", timeout=20)
    second.wait_for_selector(COMPLETE_ANSWER, timeout=20_000)
    first.wait_for_selector(COMPLETE_ANSWER, timeout=20_000)
    assert second.locator(f"{COMPLETE_ANSWER} .markdown").inner_text() == first.locator(
        f"{COMPLETE_ANSWER} .markdown").inner_text()
