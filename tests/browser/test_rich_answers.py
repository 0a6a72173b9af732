"""Answers beyond plain markdown, in Chromium: TeX math typeset by the vendored KaTeX (while it streams and once
stored, on the chat page and the shared page), the code-block toolbar (wrap lines, download), Mermaid diagrams
drawn in a sandboxed frame, and the sandboxed preview of HTML and SVG blocks."""

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
    page = make_page(width=390, height=844, color_scheme="dark")
    sign_up(page)
    send_message(page, "Stream some math")
    page.wait_for_selector(".turn-assistant.status-streaming .math-inline .katex")
    assert page.locator(".turn-assistant.status-streaming .math-inline").get_attribute("data-tex") == "x^2"
    screenshot(page, "math-streaming-phone-dark")
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


MERMAID_ANSWER = "A flow:\n\n```mermaid\ngraph TD\n  A[Start here] --> B{Choose}\n  B -->|yes| C[Done]\n```\n"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_mermaid_blocks_are_drawn_with_the_source_one_click_away(make_page, server, upstream, scheme):
    upstream.behaviour.reply = MERMAID_ANSWER
    page = make_page(color_scheme=scheme)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    send_message(page, "Draw a flow")
    block = page.locator(f"{COMPLETE_ANSWER} .code-block.is-diagram")
    image = block.locator(".diagram img")
    image.wait_for()
    assert image.evaluate("(img) => img.complete && img.naturalWidth > 50 && img.naturalHeight > 50")
    svg = image.evaluate("(img) => decodeURIComponent(img.src.split(',', 2)[1])")
    assert svg.startswith("<svg") and ">Start<" in svg and "> here<" in svg and ">Choose<" in svg
    assert "<script" not in svg
    assert image.get_attribute("alt")
    assert not block.locator("pre").is_visible()
    screenshot(page, f"mermaid-{scheme}")
    assert_clean(page, f"mermaid-{scheme}")

    toggle = block.get_by_role("button", name="Show source")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert block.locator("pre").is_visible() and not image.is_visible()
    assert "A[Start here] --> B{Choose}" in block.locator("pre").inner_text()
    toggle.press("Enter")
    assert image.is_visible() and not block.locator("pre").is_visible()
    assert page.recorder.console_errors == []
    assert page.recorder.offsite_requests(server.url) == []


def test_a_broken_mermaid_block_keeps_its_source_and_says_why(make_page, server, upstream):
    upstream.behaviour.reply = "```mermaid\ngraph TD\n  A[Start --> \n```"
    page = make_page()
    sign_up(page)
    send_message(page, "Broken diagram")
    block = page.locator(f"{COMPLETE_ANSWER} .code-block.is-diagram")
    block.locator(".diagram-error").wait_for()
    assert block.locator("pre").is_visible()
    assert block.locator(".diagram img").count() == 0


# Everything a hostile page might try from inside the preview; what happened is written into the page itself.
PREVIEW_PROBE = """<!doctype html>
<html><head><style>body { font-family: sans-serif; } #out { color: rebeccapurple; }</style></head>
<body><h1>Hello preview</h1><p id="out">running</p>
<img src="http://127.0.0.1:9/leak-image.png" alt="">
<script>
const out = [];
try { parent.document.title; out.push("parent-readable"); } catch (e) { out.push("parent-blocked"); }
try { parent.__xss("preview"); out.push("parent-called"); } catch (e) { out.push("call-blocked"); }
try { out.push("cookie:" + document.cookie); } catch (e) { out.push("cookie-blocked"); }
try { localStorage.length; out.push("storage-readable"); } catch (e) { out.push("storage-blocked"); }
fetch("/leak-fetch/").then(() => out.push("fetch-ok"), () => out.push("fetch-blocked"))
  .finally(() => { document.getElementById("out").textContent = out.join(" "); });
</script></body></html>"""


def test_html_preview_runs_in_a_sandbox_that_cannot_reach_the_page(make_page, server, upstream):
    upstream.behaviour.reply = f"A page:\n\n```html\n{PREVIEW_PROBE}\n```\n"
    page = make_page()
    page.add_init_script(path=str(AXE))
    blocked, answered = [], []
    page.on("requestfailed", lambda request: blocked.append((request.url, request.failure)))
    page.on("response", lambda response: answered.append(response.url))
    sign_up(page)
    send_message(page, "Make a page")
    preview = page.locator(f"{COMPLETE_ANSWER} .code-block").get_by_role("button", name="Preview")
    preview.click()
    panel = page.locator(".preview-panel")
    frame_element = panel.locator("iframe.preview-frame")
    assert frame_element.get_attribute("sandbox") == "allow-scripts"  # never allow-same-origin
    assert page.evaluate("document.activeElement.dataset.action") == "close-preview"
    frame = page.frame_locator(".preview-frame")
    frame.locator("h1", has_text="Hello preview").wait_for()
    out = frame.locator("#out")
    out.filter(has_not_text="running").wait_for()
    assert out.inner_text() == "parent-blocked call-blocked cookie-blocked storage-blocked fetch-blocked"
    assert out.evaluate("(el) => getComputedStyle(el).color") == "rgb(102, 51, 153)"  # its own <style> applies
    assert page.evaluate("window.__xssCalls") == []
    # The image was refused by the frame's policy before any connection (the fetch was not even attempted).
    assert [url for url in page.recorder.requests if "leak" in url] == ["http://127.0.0.1:9/leak-image.png"]
    assert blocked == [("http://127.0.0.1:9/leak-image.png", "csp")]
    assert [url for url in answered if "leak" in url] == []
    screenshot(page, "preview-html")
    assert_clean(page, "preview-html")

    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert page.locator(".preview-frame").count() == 0
    assert page.evaluate("document.activeElement.dataset.action") == "preview-code"  # focus is back


def test_svg_preview_at_phone_width(make_page, server, upstream):
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">'
        '<rect id="box" width="120" height="80" fill="teal"/></svg>'
    )
    upstream.behaviour.reply = f"```svg\n{svg}\n```"
    page = make_page(width=390, height=844, color_scheme="dark")
    sign_up(page)
    send_message(page, "Draw a box")
    page.locator(f"{COMPLETE_ANSWER} [data-action=preview-code]").click()
    page.frame_locator(".preview-frame").locator("#box").wait_for()
    assert page.locator(".preview-panel").bounding_box()["width"] == 390  # the whole width of a phone
    screenshot(page, "preview-svg-phone-dark")
    page.get_by_role("button", name="Close preview").click()
    assert not page.locator(".preview-panel").is_visible()


def test_the_frames_keep_their_own_sandbox_when_opened_directly(make_page, server):
    page = make_page()
    for path in ("/frames/preview/", "/frames/diagram/"):
        response = page.request.get(server.url + path)
        policy = response.headers["content-security-policy"]
        assert policy.startswith("sandbox allow-scripts;")
        assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
        assert "allow-same-origin" not in policy
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
    page.goto("/frames/preview/")
    assert page.evaluate("window.origin") == "null"  # an opaque origin even at the top: no cookies, no storage


def test_a_hostile_mermaid_block_stays_inert(make_page, server, upstream):
    upstream.behaviour.reply = (
        "```mermaid\ngraph TD\n  A[\"<img src=x onerror=window.__xss(1)>\"]"
        " --> B[\"<script>window.__xss(2)</script>\"]\n"
        "  click A href \"javascript:window.__xss(3)\"\n  C[\"<a href='https://evil.example/'>x</a>\"]\n```"
    )
    page = make_page()
    sign_up(page)
    send_message(page, "Hostile diagram")
    block = page.locator(f"{COMPLETE_ANSWER} .code-block.is-diagram")
    block.locator(".diagram img, .diagram-error").first.wait_for()
    if block.locator(".diagram img").count():
        block.locator(".diagram img").click()
    assert page.evaluate("window.__xssCalls") == []
    assert page.recorder.offsite_requests(server.url) == []
    assert block.locator("a, script, svg").count() == 0  # the diagram is an image, never markup in the page
