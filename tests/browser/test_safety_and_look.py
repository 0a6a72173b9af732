"""In Chromium: hostile answers, messages and titles stay inert; themes, the phone layout and Korean."""

import json

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def wait_for_sidebar_and_title(page, title):
    """After an answer the sidebar and header catch up (the composer is free a moment earlier)."""
    page.wait_for_selector(".history-item.is-active")
    wait_until(page, f"document.getElementById('chat-title').textContent === {json.dumps(title)}")

PAYLOADS = [
    "<script>window.__xss('script')</script>",
    "<img src=x onerror=\"window.__xss('img')\">",
    "<svg onload=\"window.__xss('svg')\"><circle r=5 /></svg>",
    "[click me](javascript:window.__xss('link'))",
    "<iframe srcdoc=\"<script>parent.__xss('iframe')</script>\"></iframe>",
    "<div onmouseover=\"window.__xss('raw')\">raw <b>html</b></div>",
    "![tracker](http://evil.example/track.png)",
    "![tracker2](//evil.example/pixel.gif)",
    "<a href=\"http://evil.example/\">evil link</a>",
]
HOSTILE = "\n\n".join(PAYLOADS)


def assert_nothing_ran(page, server):
    page.mouse.move(300, 300)
    page.mouse.move(700, 400)  # hover over the answer: an onmouseover would fire now
    assert page.evaluate("window.__xssCalls") == []
    assert page.recorder.dialogs == []
    assert page.recorder.offsite_requests(server.url) == []
    image_sources = page.evaluate("[...document.images].map((img) => img.src)")
    assert all(src.startswith(server.url) or src.startswith("data:") for src in image_sources), image_sources
    assert page.locator(".turns iframe, .turns script, .turns svg:not(.icon)").count() == 0


def test_hostile_answers_messages_and_titles_are_inert(make_page, server, upstream):
    upstream.behaviour.reply = HOSTILE
    upstream.behaviour.token_delay = 0.01
    page = make_page()
    sign_up(page)
    send_message(page, HOSTILE)
    page.wait_for_selector(COMPLETE_ANSWER)
    assert_nothing_ran(page, server)

    # Shown as text: the user's message verbatim, the answer's raw HTML escaped by the markdown renderer.
    assert PAYLOADS[0] in page.locator(".turn-user .turn-body").inner_text()
    answer_text = page.locator(f"{COMPLETE_ANSWER} .markdown").inner_text()
    assert "<script>window.__xss('script')</script>" in answer_text
    assert "[click me](javascript:window.__xss('link'))" in answer_text
    assert "[tracker]" in answer_text
    assert page.locator(f"{COMPLETE_ANSWER} .markdown a").count() == 0

    # The title (from the first message) and a hostile rename, in the header and the sidebar.
    item = page.locator(".history-item").first
    item.locator("summary").click()
    item.locator("[data-action=rename]").click()
    title = "<img src=x onerror=\"window.__xss('title')\"><script>window.__xss('t')</script>"
    page.fill("#dialog-input", title)
    page.click("#dialog-ok")
    wait_until(page, f"document.getElementById('chat-title').textContent === {json.dumps(title)}")
    assert page.locator(".history-link").first.inner_text() == title

    page.reload()
    page.wait_for_selector(COMPLETE_ANSWER)
    assert page.locator("#chat-title").inner_text() == title
    assert page.locator(".history-link").first.inner_text() == title
    assert page.title().startswith(title)
    assert_nothing_ran(page, server)
    assert page.recorder.console_errors == []

    # The search results render the title inert too.
    page.fill("#history-search", "script")
    page.wait_for_selector(".history-link >> text=<script>")
    assert_nothing_ran(page, server)


def test_themes_follow_the_system_and_the_toggle_sticks(make_page, server, upstream):
    upstream.behaviour.reply = (
        "Sure. A table and some code:\n\n| Language | Typing |\n|---|:-:|\n| Python | dynamic |\n| Rust | static |"
        "\n\n```python\ndef greet(name: str) -> str:\n    return f\"Hello, {name}!\"\n```\n\nAnything else?"
    )
    page = make_page(color_scheme="dark")
    sign_up(page)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    send_message(page, "Show me a table and some Python")
    page.wait_for_selector(COMPLETE_ANSWER)
    wait_for_sidebar_and_title(page, "Show me a table and some Python")
    screenshot(page, "desktop-dark")

    page.click(".sidebar [data-action=toggle-theme]")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate("localStorage.getItem('chatsite:theme')") == "light"
    screenshot(page, "desktop-light-table")


def test_phone_layout_at_375px(make_page, server, upstream):
    upstream.behaviour.reply = "A short answer that wraps on a small screen, with `inline code` and **bold**."
    page = make_page(width=375, height=760)
    sign_up(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    sidebar = page.locator("#sidebar")
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 1  # off screen
    send_message(page, "Hello from a phone")
    page.wait_for_selector(COMPLETE_ANSWER)
    wait_for_sidebar_and_title(page, "Hello from a phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator("#composer-input").is_visible()
    screenshot(page, "mobile")
    page.click("[data-action=toggle-settings]")
    assert page.locator("#setting-system-prompt").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "mobile-settings")
    page.click("[data-action=toggle-settings]")

    page.click("[data-action=open-sidebar]")
    wait_until(page, "document.getElementById('sidebar').getBoundingClientRect().x >= 0")
    assert page.locator(".history-item").count() == 1
    screenshot(page, "mobile-sidebar")
    page.click(".sidebar-close")
    wait_until(page, "document.getElementById('sidebar').getBoundingClientRect().right <= 1")


def test_korean_ui(make_page, server, upstream):
    upstream.behaviour.reply = "안녕하세요! 무엇을 도와드릴까요? **한국어** 답변입니다."
    page = make_page()
    sign_up(page)
    page.click(".sidebar .lang-btn[lang=ko]")
    page.wait_for_selector("html[lang=ko]")
    assert page.locator(".btn-new-chat").inner_text().strip() == "새 채팅"
    assert page.get_attribute("#composer-input", "placeholder") == "메시지를 입력하세요"
    assert page.locator(".empty-state h2").inner_text() == "무엇을 도와드릴까요?"
    strings = json.loads(page.locator("#js-strings").text_content())
    assert strings["retry"] == "다시 시도"
    send_message(page, "한국어로 대답해 주세요")
    page.wait_for_selector(COMPLETE_ANSWER)
    wait_for_sidebar_and_title(page, "한국어로 대답해 주세요")
    assert page.locator(".history-group").first.inner_text() == "오늘"
    assert page.get_attribute(f"{COMPLETE_ANSWER} [data-action=copy-turn]", "title") == "복사"
    screenshot(page, "korean")
    page.goto("/accounts/profile/")
    assert "오늘 사용량" in page.content()
    page.click(".lang-btn[lang=en]")
    page.wait_for_selector("html[lang=en]")
