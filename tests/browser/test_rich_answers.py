"""Answers beyond plain markdown, in Chromium: TeX math typeset by the vendored KaTeX (while it streams and once
stored, on the chat page and the shared page) and the code-block toolbar (wrap lines, download)."""

import pytest

from tests.browser.helpers import screenshot, send_message, sign_up
from tests.browser.test_accessibility import AXE, assert_clean

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"
MATH_ANSWER = (
    "Energy: $E=mc^2$ and \\(a^2+b^2=c^2\\). It costs $5 and $10 today.\n\n"
    "$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n$$\n\n"
    "In code: `$HOME` stays, and so does\n\n```sh\necho $PATH $x$\n```"
)


def math_state(page, scope: str) -> dict:
    return page.evaluate(
        """(scope) => {
          const root = document.querySelector(scope);
          return {
            inline: [...root.querySelectorAll('.math-inline')].map((s) => s.dataset.tex),
            display: [...root.querySelectorAll('.math-display')].map((s) => s.dataset.tex.trim()),
            katex: root.querySelectorAll('.math-inline .katex, .math-display .katex-display').length,
            mathml: root.querySelectorAll('.katex math annotation').length,
            text: root.querySelector('.markdown').innerText,
            code: [...root.querySelectorAll('code')].map((c) => c.textContent),
          };
        }""",
        scope,
    )


def test_math_is_typeset_and_prices_and_code_are_left_alone(make_page, server, upstream):
    upstream.behaviour.reply = MATH_ANSWER
    page = make_page()
    sign_up(page)
    send_message(page, "Some math please")
    page.wait_for_selector(f"{COMPLETE_ANSWER} .katex")
    state = math_state(page, COMPLETE_ANSWER)
    assert state["inline"] == ["E=mc^2", "a^2+b^2=c^2"]
    assert state["display"] == ["\\int_0^1 x^2\\,dx = \\frac{1}{3}"]
    assert state["katex"] == 3
    assert state["mathml"] == 3  # screen readers get MathML with the TeX as its annotation
    assert "It costs $5 and $10 today." in state["text"]
    assert state["code"] == ["$HOME", "echo $PATH $x$\n"]
    # The fonts come from this site (static/vendor/katex/fonts), and the strict CSP had nothing to refuse.
    assert any("/static/vendor/katex/fonts/KaTeX_Main" in url for url in page.recorder.requests)
    assert page.recorder.offsite_requests(server.url) == []
    assert page.recorder.console_errors == []
    screenshot(page, "math-light")

    page.reload()  # the server's render, typeset by the page
    page.wait_for_selector(f"{COMPLETE_ANSWER} .katex")
    assert math_state(page, COMPLETE_ANSWER) == state


def test_math_is_typeset_while_the_answer_streams(make_page, server, upstream):
    upstream.behaviour.reply = "So $x^2$ grows. " + " ".join(["more"] * 60)
    upstream.behaviour.token_delay = 0.1
    page = make_page()
    sign_up(page)
    send_message(page, "Stream some math")
    page.wait_for_selector(".turn-assistant.status-streaming .math-inline .katex")
    assert page.locator(".turn-assistant.status-streaming .math-inline").get_attribute("data-tex") == "x^2"
    page.wait_for_selector(COMPLETE_ANSWER, timeout=30_000)
    assert page.locator(f"{COMPLETE_ANSWER} .math-inline").get_attribute("data-tex") == "x^2"
    assert page.locator(f"{COMPLETE_ANSWER} .math-inline .katex").count() == 1


def test_hostile_tex_stays_inert(make_page, server, upstream):
    upstream.behaviour.reply = (
        "$\\href{javascript:window.__xss(1)}{x}$ and $<img src=x onerror=window.__xss(2)>$ "
        "and $\\htmlClass{evil}{y}$ and $\\url{https://evil.example/}$"
    )
    page = make_page()
    sign_up(page)
    send_message(page, "Hostile math")
    page.wait_for_selector(f"{COMPLETE_ANSWER} .math-inline")
    page.wait_for_selector(f"{COMPLETE_ANSWER} .katex, {COMPLETE_ANSWER} .katex-error")
    assert page.evaluate("window.__xssCalls") == []
    assert page.locator(f"{COMPLETE_ANSWER} .markdown a, {COMPLETE_ANSWER} .markdown img, .evil").count() == 0
    assert page.recorder.offsite_requests(server.url) == []


def test_code_block_wraps_and_downloads(make_page, server, upstream, tmp_path):
    long_line = "x = " + " + ".join(f"value_{n}" for n in range(40))
    upstream.behaviour.reply = f"```python\n{long_line}\nprint(x)\n```"
    page = make_page(width=390, height=844)
    sign_up(page)
    send_message(page, "A long line")
    block = page.locator(f"{COMPLETE_ANSWER} .code-block")
    wrap = block.get_by_role("button", name="Wrap lines")
    assert wrap.get_attribute("aria-pressed") == "false"
    pre = block.locator("pre")
    assert pre.evaluate("(el) => el.scrollWidth > el.clientWidth")  # one long line scrolls sideways
    wrap.click()
    assert wrap.get_attribute("aria-pressed") == "true"
    assert pre.evaluate("(el) => el.scrollWidth <= el.clientWidth")
    screenshot(page, "code-wrapped-phone")
    wrap.press("Enter")  # the keyboard works too
    assert wrap.get_attribute("aria-pressed") == "false"

    with page.expect_download() as download_info:
        block.get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "code.py"
    path = tmp_path / "code.py"
    download.save_as(path)
    assert path.read_text() == f"{long_line}\nprint(x)\n"


def test_shared_page_typesets_math_and_has_code_tools(make_page, server, upstream):
    upstream.behaviour.reply = MATH_ANSWER
    page = make_page()
    sign_up(page)
    send_message(page, "Math to share")
    page.wait_for_selector(f"{COMPLETE_ANSWER} .katex")
    page.click("#export-links summary")
    page.click("[data-action=share]")
    page.click("#share-create")
    page.wait_for_selector("#share-result:not(.is-hidden)")
    url = page.input_value("#share-url")

    reader = make_page()
    reader.goto(url)
    reader.wait_for_selector(".shared-turns .katex")
    assert reader.locator(".shared-turns .math-display .katex-display").count() == 1
    assert "It costs $5 and $10 today." in reader.locator(".shared-turns .markdown").inner_text()
    assert reader.locator(".shared-turns .code-block [data-action=wrap-code]").count() == 1
    assert reader.recorder.console_errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_math_and_code_tools_pass_axe(make_page, server, upstream, scheme):
    upstream.behaviour.reply = MATH_ANSWER
    page = make_page(color_scheme=scheme)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    send_message(page, "Math for the audit")
    page.wait_for_selector(f"{COMPLETE_ANSWER} .katex")
    page.locator(f"{COMPLETE_ANSWER} [data-action=wrap-code]").click()
    assert_clean(page, f"math-{scheme}")


PARITY_SAMPLES = [
    "$E=mc^2$ and \\(x\\), $5 and $10, `$x$`",
    "a $$x$$ b \\[y\\]\n\n$$\n\\frac{1}{2}\n$$\n\n\\[\na\\\\\nb\n\\]",
    "text\n$$x$$\nmore $a<b$ and $\\$5$ and \\$x$",
    "- $x$\n- $$\n  y\n  $$\n\n> $q$",
    "$$ never closed\n\n$x \n\nUS$5/US$10",
]


def test_the_page_marks_up_math_exactly_as_the_server_does(make_page, server):
    from conversations.markdown import render_markdown

    page = make_page()
    sign_up(page)
    rendered = page.evaluate(
        """async (samples) => {
          const { renderMarkdown } = await import('/static/js/markdown.js');
          return samples.map((text) => {
            const box = document.createElement('div');
            box.append(renderMarkdown(text));
            return box.innerHTML;
          });
        }""",
        PARITY_SAMPLES,
    )
    assert rendered == [render_markdown(text) for text in PARITY_SAMPLES]
