"""Server tool steps on the page: folded above the answer while it is written, and the same after a reload."""

import json

from tests.browser.helpers import screenshot, send_message, sign_up

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"


def test_tool_steps_show_folded_while_streaming_and_after_a_reload(make_page, server, upstream):
    upstream.behaviour.tool_rounds = 2
    upstream.behaviour.tool_script = [
        ("calculator", json.dumps({"expression": "6 * 7"})), ("calculator", json.dumps({"expression": "2 ** 10"})),
    ]
    upstream.behaviour.reply = "The answers are 42 and 1024."
    upstream.behaviour.token_delay = 0.05
    page = make_page()
    sign_up(page)
    page.select_option("#model-picker", label="fake-tool-model")
    send_message(page, "What are 6*7 and 2**10?")
    # While the answer is still being written, both steps are already there, folded.
    page.wait_for_selector(".turn-tool >> nth=1")
    page.wait_for_selector(COMPLETE_ANSWER)

    def check_steps():
        steps = page.locator(".turn-step")
        assert steps.count() == 2
        assert steps.nth(0).locator(".tool-call summary").inner_text() == "Called the tool calculator"
        results = page.locator(".turn-tool .tool-result")
        assert results.count() == 2
        assert not results.nth(0).evaluate("el => el.open")  # folded
        assert not page.locator(".turn-step .turn-actions").count()  # the answer below has the actions
        results.nth(1).locator("summary").click()
        assert results.nth(1).locator("pre").inner_text() == "1024"
        assert " ms" in results.nth(1).locator("summary").inner_text()
        steps.nth(0).locator(".tool-call summary").click()
        assert json.loads(steps.nth(0).locator(".tool-call pre").inner_text()) == {"expression": "6 * 7"}
        order = page.eval_on_selector_all(
            "#turns .turn", "els => els.map(e => e.dataset.role + (e.classList.contains('turn-step') ? ':step' : ''))"
        )
        assert order == ["user", "assistant:step", "tool", "assistant:step", "tool", "assistant"]
        assert page.locator(COMPLETE_ANSWER).locator(".markdown").inner_text() == upstream.behaviour.reply

    check_steps()
    screenshot(page, "tool-steps")
    page.reload()
    page.wait_for_selector(COMPLETE_ANSWER)
    check_steps()
