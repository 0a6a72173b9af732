"""Code written without a fence, in Chromium: shown as a code block while it streams and once stored, never as
headings, and the page fences exactly what the server fences."""

from conversations.markdown_code import fence_bare_code
from conversations.tests.test_markdown_code import BARE_CODE_ANSWER
from tests.browser.helpers import send_message, sign_up

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"

PARITY_SAMPLES = [
    BARE_CODE_ANSWER,
    "# A heading\n\nSome prose under it.\n\n- a list item\n- another one",
    "Here it is:\nfunction reverse(text) {\n  return text.split('').reverse().join('');\n}\nDone.",
    "```python\ndef f():\n    return 1\n```\n\nThen call f().",
    "1. First step:\n   x = 1\n   y = 2\n2. Second step",
    "#!/bin/bash\necho hello\nls -la;\n\nThat lists the files.",
]


def test_the_page_fences_bare_code_exactly_as_the_server_does(make_page, server):
    page = make_page()
    sign_up(page)
    fenced = page.evaluate(
        """async (samples) => {
          const { fenceBareCode } = await import('/static/js/markdown-code.js');
          return samples.map(fenceBareCode);
        }""",
        PARITY_SAMPLES,
    )
    assert fenced == [fence_bare_code(text) for text in PARITY_SAMPLES]


def test_a_bare_program_is_a_code_block_while_it_streams_and_once_stored(make_page, server, upstream):
    upstream.behaviour.reply = BARE_CODE_ANSWER
    upstream.behaviour.token_delay = 0.03
    page = make_page()
    sign_up(page)
    send_message(page, "Write a Python function that sorts a list")
    page.wait_for_selector(".turn-assistant.status-streaming pre code")
    page.wait_for_selector(COMPLETE_ANSWER)
    answer = page.locator(f"{COMPLETE_ANSWER} .markdown")
    assert answer.locator("h1, h2, h3").count() == 0
    assert answer.locator("pre code.language-python").count() == 1
    assert "def " in answer.locator("pre").inner_text()
    assert page.recorder.console_errors == []
