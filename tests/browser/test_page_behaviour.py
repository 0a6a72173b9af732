"""In Chromium: the composer's limit, the sidebar (menus, keyboard, far-down chats, new chats), refused first
messages, feedback, streamed markdown, keyboard access, the phone header and the empty chat."""

import json
import re

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def csrf(page) -> str:
    return page.input_value("input[name=csrfmiddlewaretoken] >> nth=0")


def make_chats(page, count: int, prefix: str = "Chat") -> list[str]:
    """`count` titled chats through the API, newest last; their ids."""
    token = csrf(page)
    ids = []
    for number in range(count):
        response = page.request.post(
            "/api/v1/conversations/", data={"title": f"{prefix} {number}"}, headers={"X-CSRFToken": token}
        )
        assert response.status == 201, response.text()
        ids.append(response.json()["id"])
    return ids


def test_a_paste_over_the_limit_is_kept_whole_with_a_counter_and_cannot_be_sent(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    limit = int(page.get_attribute("#chat", "data-max-chars"))
    page.fill("#composer-input", "x" * (limit + 25))
    assert len(page.input_value("#composer-input")) == limit + 25  # nothing cut
    warning = page.locator("#composer-count")
    assert warning.is_visible()
    assert f"{limit + 25:,}" in warning.inner_text() and "25 too many" in warning.inner_text()
    assert page.get_attribute("#composer-input", "aria-invalid") == "true"
    assert page.is_disabled("#composer-send")
    page.press("#composer-input", "Enter")
    assert upstream.chat_requests == []
    screenshot(page, "composer-over-limit")
    page.fill("#composer-input", "x" * (limit - 10))
    assert page.locator("#composer-count").inner_text() == f"{limit - 10:,} of {limit:,} characters"
    assert not page.is_disabled("#composer-send")


def test_the_row_menu_closes_moves_with_arrows_and_never_covers_another(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    ids = make_chats(page, 3)
    page.reload()
    rows = page.locator(".history-item")
    first, second = rows.nth(0), rows.nth(1)

    first.locator("summary").click()
    assert first.locator("details").get_attribute("open") is not None
    # The first item takes the focus in the details' toggle event, which the browser fires a moment later.
    wait_until(page, "document.activeElement.dataset.action === 'rename'")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.action") == "pin"
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.dataset.action") == "delete"
    page.keyboard.press("ArrowDown")  # wraps around
    assert page.evaluate("document.activeElement.dataset.action") == "rename"
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.dataset.action") == "delete"
    screenshot(page, "row-menu-open")
    page.keyboard.press("Escape")
    assert first.locator("details").get_attribute("open") is None
    assert page.evaluate("document.activeElement.classList.contains('history-link')")

    # Opening the next row's menu closes the first: never two open, one over the other.
    first.locator("summary").click()
    second.locator("summary").click()  # not covered by the first row's menu
    wait_until(page, "document.querySelectorAll('details.item-menu[open]').length === 1")  # closed on toggle
    assert second.locator("details").get_attribute("open") is not None

    # A click elsewhere closes it; so does typing.
    page.click("#turns-scroll", position={"x": 40, "y": 40})
    assert page.locator("details.item-menu[open]").count() == 0
    first.locator("summary").click()
    page.focus("#composer-input")
    page.keyboard.type("h")
    assert page.locator("details.item-menu[open]").count() == 0

    # From the keyboard: one Tab stop per row; ArrowRight opens the row's menu.
    page.focus(f".history-item[data-id='{ids[-1]}'] .history-link")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('.history-item')?.dataset.id") == ids[-2]
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('.history-item')?.dataset.id") == ids[-3]
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.action") == "rename"
    page.keyboard.press("Enter")
    page.wait_for_selector("#dialog[open]")
    page.keyboard.press("Escape")


def test_opening_a_far_down_chat_shows_it_in_the_sidebar_without_rendering_the_history_down_to_it(
    make_page, server, upstream
):
    """The sidebar never renders more than a page: a chat far down the history is shown on its own above the first
    page, marked as open and in view; "load more" then reaches it in its place."""
    page = make_page()
    sign_up(page)
    ids = make_chats(page, 130)
    page.reload()
    assert page.locator(".history-item").count() == 50
    target = ids[-121]  # the 121st from the top
    # Scroll the sidebar down until the 121st row is loaded (the list loads more as it scrolls).
    for _ in range(40):
        if page.locator(f".history-item[data-id='{target}']").count():
            break
        page.eval_on_selector("#history", "el => { el.scrollTop = el.scrollHeight; }")
        page.wait_for_timeout(100)
    row = page.locator(f".history-item[data-id='{target}']")
    row.scroll_into_view_if_needed()
    row.locator(".history-link").click()
    page.wait_for_url(f"**/c/{target}/")
    active = page.locator(".history-item.is-active")
    assert active.get_attribute("data-id") == target
    assert page.locator(".history-item").count() <= 51  # one page, and the open chat above it
    box, rows_box = active.bounding_box(), page.locator("#history").bounding_box()
    assert rows_box["y"] <= box["y"] and box["y"] + box["height"] <= rows_box["y"] + rows_box["height"]
    screenshot(page, "far-down-chat-open")

    # Opened directly (a bookmark): listed, marked and in view, the same way.
    page.goto(f"/c/{ids[-125]}/")
    active = page.locator(".history-item.is-active")
    assert active.get_attribute("data-id") == ids[-125]
    assert page.locator(".history-item").count() <= 51
    box, rows_box = active.bounding_box(), page.locator("#history").bounding_box()
    assert rows_box["y"] <= box["y"] and box["y"] + box["height"] <= rows_box["y"] + rows_box["height"]


def test_a_new_chat_is_listed_at_once(make_page, server, upstream):
    upstream.behaviour.ttft = 4.0  # a loaded CI machine once took over a second between two checks
    page = make_page()
    sign_up(page)
    assert page.locator(".history-empty").is_visible()
    send_message(page, "List me right away")
    # Before the answer (and long before any title): the chat is in the sidebar, marked as open.
    page.wait_for_selector(".history-item.is-active")
    assert page.locator(".history-empty").count() == 0
    # Read in one go, so the answer cannot finish between the two reads.
    status, title = page.evaluate(
        "[[...document.querySelectorAll('.turn-assistant')].pop()?.dataset.status ?? null,"
        " document.querySelector('.history-item.is-active .history-link').textContent.trim()]")
    assert status != "complete"
    # The row is "New chat" until the answer.started event brings the name the server gave the chat at once (its
    # first message); which of the two shows here depends only on how fast that event arrives.
    assert title in ("New chat", "List me right away")
    page.wait_for_selector(COMPLETE_ANSWER)
    wait_until(page, "document.querySelector('.history-item.is-active .history-link').textContent === "
                     "'List me right away'")
    assert page.locator(".history-item").count() == 1


def test_a_throttled_first_message_leaves_no_empty_chat_and_says_so_plainly(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)

    def throttled(route):
        route.fulfill(
            status=429, content_type="application/json", headers={"Retry-After": "42"},
            body=json.dumps({"error": {"code": "throttled",
                                       "message": "Request was throttled. Expected available in 42 seconds."}}),
        )

    page.route(re.compile(r".*/api/v1/conversations/[0-9a-f-]+/turns/$"), throttled)
    send_message(page, "Too fast?")
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    message = page.locator("#composer-error").inner_text()
    assert message == "You are sending messages faster than this site allows. Try again in 42 seconds."
    wait_until(page, "document.getElementById('chat').dataset.conversationId === ''")
    assert page.input_value("#composer-input") == "Too fast?"
    assert page.locator(".turn").count() == 0
    assert page.locator(".history-item").count() == 0
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", page.url)
    assert server.db.query(
        "SELECT count(*) FROM conversations_conversation c JOIN accounts_user u ON u.id = c.owner_id "
        "WHERE u.username = %s", (username,))[0][0] == 0
    screenshot(page, "throttled-first-message")

    page.unroute(re.compile(r".*/api/v1/conversations/[0-9a-f-]+/turns/$"))
    page.press("#composer-input", "Enter")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert server.db.query(
        "SELECT c.source FROM conversations_conversation c JOIN accounts_user u ON u.id = c.owner_id "
        "WHERE u.username = %s", (username,)) == [("web",)]


def test_feedback_can_be_cleared_and_commented(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    send_message(page, "Rate me")
    answer = page.locator(COMPLETE_ANSWER)
    answer.wait_for()
    turn_id = answer.get_attribute("data-turn-id")

    def stored():
        return server.db.query("SELECT rating, comment FROM conversations_feedback WHERE turn_id = %s", (turn_id,))

    answer.locator("[data-rating='-1']").click()
    page.wait_for_selector(f"{COMPLETE_ANSWER} [data-rating='-1'][aria-pressed=true]")
    comment = answer.locator(".feedback-comment textarea")
    comment.fill("It missed the point.")
    answer.locator(".feedback-comment button[type=submit]").click()
    page.wait_for_selector(f"{COMPLETE_ANSWER} .feedback-status >> text=Thanks")
    assert stored() == [(-1, "It missed the point.")]
    screenshot(page, "feedback-comment")

    page.reload()
    assert page.input_value(".feedback-comment textarea") == "It missed the point."
    page.click(f"{COMPLETE_ANSWER} [data-rating='-1']")  # pressed again: taken back
    page.wait_for_selector(f"{COMPLETE_ANSWER} [data-rating='-1'][aria-pressed=false]")
    wait_until(page, "document.querySelector('.feedback-comment').classList.contains('is-hidden')")
    assert stored() == []
    page.reload()
    assert page.locator("[aria-pressed=true]").count() == 0


def test_markdown_is_rendered_while_it_streams_then_replaced_by_the_server_render(make_page, server, upstream):
    upstream.behaviour.reply = (
        "Some **bold** words and a [link](https://example.com/) then a table:\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n"
        "<img src=x onerror=\"window.__xss('img')\"> ![t](http://evil.example/t.png) "
        + " ".join(f"word{n}" for n in range(60))
    )
    upstream.behaviour.token_delay = 0.03
    page = make_page()
    sign_up(page)
    send_message(page, "Format something")
    streaming = page.locator(".turn-assistant.status-streaming .turn-body")
    streaming.locator("strong").wait_for()
    page.wait_for_selector(".turn-assistant.status-streaming .turn-body td.align-right")
    assert streaming.locator("strong").inner_text() == "bold"
    assert "**" not in streaming.inner_text()
    link = streaming.locator("a")
    assert link.get_attribute("href") == "https://example.com/"
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert streaming.locator("img").count() == 0
    screenshot(page, "markdown-streaming")
    page.wait_for_selector(COMPLETE_ANSWER)
    final = page.locator(f"{COMPLETE_ANSWER} .markdown")
    assert final.locator("strong").inner_text() == "bold"
    assert "[t]" in final.inner_text()
    assert page.evaluate("window.__xssCalls") == []
    assert page.recorder.offsite_requests(server.url) == []


def test_keyboard_skip_link_escape_and_the_edit_box(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    page.goto("/accounts/profile/")  # no autofocus here: the first Tab is the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.goto("/")
    assert page.evaluate("document.body.firstElementChild.className") == "skip-link"
    page.focus(".skip-link")
    page.keyboard.press("Enter")  # on the chat page it leads to the composer
    assert page.evaluate("document.activeElement.id") == "composer-input"

    # Esc closes Settings and gives the focus back to its button.
    page.click(".chat-tools [data-action=toggle-settings]")
    assert page.is_visible("#chat-settings")
    page.keyboard.press("Escape")
    assert not page.is_visible("#chat-settings")
    assert page.evaluate("document.activeElement.dataset.action") == "toggle-settings"

    send_message(page, "First words")
    page.wait_for_selector(COMPLETE_ANSWER)
    message = page.locator(".turn-user")
    message.hover()
    message.locator("[data-action=edit]").click()
    page.keyboard.press("Escape")  # cancels
    assert page.locator(".turn-editor").count() == 0
    assert message.locator(".turn-body").inner_text() == "First words"
    message.hover()
    message.locator("[data-action=edit]").click()
    page.fill(".turn-editor textarea", "Edited")
    page.press(".turn-editor textarea", "Shift+Enter")  # a new line, not a send
    page.keyboard.type("second line")
    assert page.input_value(".turn-editor textarea") == "Edited\nsecond line"
    page.press(".turn-editor textarea", "Enter")  # sends
    page.wait_for_selector(".turn-user .turn-body >> text=second line")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert upstream.chat_requests[-1].messages[-1]["content"] == "Edited\nsecond line"

    message = page.locator(".turn-user")
    message.hover()
    message.locator("[data-action=edit]").click()
    page.fill(".turn-editor textarea", "With control")
    page.press(".turn-editor textarea", "Control+Enter")
    page.wait_for_selector(".turn-user .turn-body >> text=With control")
    page.wait_for_selector(COMPLETE_ANSWER)


def test_phone_sidebar_escape_and_tab_order_header_and_empty_chat(make_page, server, upstream):
    for scheme in ("light", "dark"):
        page = make_page(width=390, height=780, color_scheme=scheme)
        sign_up(page)
        # The empty chat: the model it will use, and suggestions.
        assert page.locator("#model-picker").is_visible()
        assert page.evaluate("document.getElementById('model-picker').selectedOptions[0].textContent") == "fake-model"
        assert page.locator(".suggestion").count() >= 3
        screenshot(page, f"empty-chat-phone-{scheme}")

    # The closed sidebar is out of the Tab order: Shift+Tab from the composer stays in the chat.
    assert page.evaluate("document.getElementById('sidebar').inert")
    page.focus("#composer-input")
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        assert not page.evaluate("document.getElementById('sidebar').contains(document.activeElement)")

    # The header: title, New chat, Settings and the menu fit; the title keeps its room.
    send_message(page, "A fairly long first message that makes a long title for the header")
    page.wait_for_selector(COMPLETE_ANSWER)
    wait_until(page, "document.getElementById('chat-title').textContent.startsWith('A fairly long')")
    assert page.locator(".head-new-chat").is_visible()
    assert page.locator("#export-links summary").is_visible()
    assert page.locator("#chat-title").bounding_box()["width"] >= 200
    screenshot(page, "phone-header")

    page.click("[data-action=open-sidebar]")
    wait_until(page, "document.getElementById('sidebar').getBoundingClientRect().x >= 0")
    assert not page.evaluate("document.getElementById('sidebar').inert")
    assert page.evaluate("document.activeElement.classList.contains('sidebar-close')")
    page.keyboard.press("Escape")
    wait_until(page, "document.getElementById('sidebar').getBoundingClientRect().right <= 1")
    assert page.evaluate("document.getElementById('sidebar').inert")
    assert page.evaluate("document.activeElement.classList.contains('sidebar-toggle')")
    page.click(".head-new-chat")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))


def test_branding_is_chatsite_everywhere(make_page, server, upstream):
    page = make_page()
    page.goto("/accounts/login/")
    assert page.title() == "chatsite" or page.title().endswith("chatsite")
    assert "Chatbot service" not in page.content()
    sign_up(page)
    assert page.locator(".sidebar .brand").inner_text().strip() == "chatsite"
    assert "Chatbot service" not in page.content()


def test_a_suggestion_on_the_empty_chat_is_sent(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    suggestion = page.locator(".suggestion").first
    text = suggestion.inner_text()
    suggestion.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert page.locator(".turn-user .turn-body").inner_text() == text
    assert upstream.chat_requests[-1].messages[-1] == {"role": "user", "content": text}
    assert page.input_value("#composer-input") == ""


def test_jump_to_the_latest_while_an_answer_streams(make_page, server, upstream):
    upstream.behaviour.reply = " ".join(["A paragraph of the long answer.\n\n"] * 60)
    upstream.behaviour.token_delay = 0.03
    page = make_page(width=390, height=700)
    sign_up(page)
    jump = page.get_by_role("button", name="Jump to the latest")
    send_message(page, "Write a long answer")
    wait_until(page, "document.getElementById('turns-scroll').scrollHeight > 2 * innerHeight")
    assert not jump.is_visible()  # following the answer at the end of the chat
    # The reader scrolls up (again if a frame already on its way still followed the answer down).
    assert page.evaluate("""async () => {
      const scroller = document.getElementById('turns-scroll');
      for (let attempt = 0; attempt < 20; attempt += 1) {
        scroller.scrollTop = 0;
        await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
        if (scroller.scrollTop === 0) return true;
      }
      return false;
    }""")
    jump.wait_for()
    assert page.locator(".turn-assistant.status-streaming").count() == 1
    screenshot(page, "jump-to-latest-phone")
    jump.click()
    assert page.evaluate(
        "(() => { const s = document.getElementById('turns-scroll'); "
        "return s.scrollHeight - s.scrollTop - s.clientHeight < 120; })()"
    )
    jump.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.id") == "composer-input"
    page.wait_for_selector(COMPLETE_ANSWER, timeout=30_000)
