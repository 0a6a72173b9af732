"""Versions in a real Chromium: regenerate and edit keep the old versions; "< 2/3 >" switches between them."""

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def answer_text(page) -> str:
    return page.locator(".turn-assistant .markdown").last.inner_text().strip()


def versions_label(turn) -> str:
    return turn.locator(".turn-versions-label").inner_text().replace(" ", "")


def wait_for_answer(page, text: str) -> None:
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text={text}")
    wait_until(page, "!document.querySelector('.chat.is-busy')")


def test_regenerate_twice_then_switch_back_to_the_first_answer(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    upstream.behaviour.reply = "The first answer."
    send_message(page, "Name a colour")
    wait_for_answer(page, "The first answer.")
    for reply in ("The second answer.", "The third answer."):
        upstream.behaviour.reply = reply
        page.locator(".turn-assistant").last.hover()
        page.click(".turn-assistant [data-action=regenerate]")
        wait_for_answer(page, reply)
    answer = page.locator(".turn-assistant").last
    assert versions_label(answer) == "3/3"
    assert page.locator(".turn").count() == 2  # versions replace each other on screen, not pile up

    answer.locator("[aria-label='Previous version']").click()
    wait_until(page, "document.querySelector('.turn-versions-label')?.textContent.includes('2 / 3')")
    page.locator(".turn-assistant [aria-label='Previous version']").click()
    wait_until(page, "document.querySelector('.turn-versions-label')?.textContent.includes('1 / 3')")
    assert answer_text(page) == "The first answer."
    assert page.is_disabled(".turn-assistant [aria-label='Previous version']")

    page.reload()
    assert answer_text(page) == "The first answer."
    assert versions_label(page.locator(".turn-assistant")) == "1/3"
    page.set_viewport_size({"width": 900, "height": 520})
    screenshot(page, "versions-light")
    assert page.recorder.console_errors == []


def test_edit_the_first_message_of_three_exchanges_and_switch_between_branches(make_page, server, upstream):
    page = make_page(color_scheme="dark")
    sign_up(page)
    for number in (1, 2, 3):
        upstream.behaviour.reply = f"Answer number {number}."
        send_message(page, f"Question number {number}")
        wait_for_answer(page, f"Answer number {number}.")
    assert page.locator(".turn").count() == 6

    first = page.locator(".turn-user").first
    first.hover()
    first.locator("[data-action=edit]").click()
    page.fill(".turn-editor textarea", "Question number 1, asked differently")
    upstream.behaviour.reply = "An answer on the new branch."
    page.click(".turn-editor button[type=submit]")
    wait_for_answer(page, "An answer on the new branch.")
    assert page.locator(".turn").count() == 2  # the new branch: the edited message and its answer
    assert upstream.chat_requests[-1].messages[1:] == [
        {"role": "user", "content": "Question number 1, asked differently"}]
    assert versions_label(page.locator(".turn-user").first) == "2/2"

    # Back to the original branch: all three exchanges return.
    page.locator(".turn-user").first.hover()
    page.locator(".turn-user [aria-label='Previous version']").first.click()
    wait_until(page, "document.querySelectorAll('.turn').length === 6")
    assert page.locator(".turn-user .turn-body").first.inner_text() == "Question number 1"
    assert answer_text(page) == "Answer number 3."
    page.reload()
    assert page.locator(".turn").count() == 6 and answer_text(page) == "Answer number 3."

    # And forward to the edited branch again, which also survives a reload.
    page.locator(".turn-user").first.hover()
    page.locator(".turn-user [aria-label='Next version']").first.click()
    wait_until(page, "document.querySelectorAll('.turn').length === 2")
    page.reload()
    assert page.locator(".turn").count() == 2
    assert answer_text(page) == "An answer on the new branch."
    page.locator(".turn-user").first.hover()
    page.set_viewport_size({"width": 900, "height": 520})
    screenshot(page, "versions-dark")
    assert page.recorder.console_errors == []


def test_the_version_switcher_at_phone_width(make_page, server, upstream):
    page = make_page(width=390, height=700)
    sign_up(page)
    upstream.behaviour.reply = "A short answer."
    send_message(page, "Hello")
    wait_for_answer(page, "A short answer.")
    upstream.behaviour.reply = "Another short answer."
    page.click(".turn-assistant [data-action=regenerate]")
    wait_for_answer(page, "Another short answer.")
    switcher = page.locator(".turn-assistant .turn-versions")
    box = switcher.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390  # fully on screen
    switcher.locator("[aria-label='Previous version']").click()
    wait_until(page, "document.querySelector('.turn-versions-label')?.textContent.includes('1 / 2')")
    assert answer_text(page) == "A short answer."
    screenshot(page, "versions-mobile")


def test_coming_back_to_a_branch_shows_the_answer_picked_there(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    upstream.behaviour.reply = "The first answer."
    send_message(page, "Name a colour")
    wait_for_answer(page, "The first answer.")
    upstream.behaviour.reply = "The second answer."
    page.locator(".turn-assistant").last.hover()
    page.click(".turn-assistant [data-action=regenerate]")
    wait_for_answer(page, "The second answer.")
    page.locator(".turn-assistant [aria-label='Previous version']").click()  # the reader picks the first answer
    wait_until(page, "document.querySelector('.turn-assistant .turn-versions-label')?.textContent.includes('1 / 2')")

    first = page.locator(".turn-user").first
    first.hover()
    first.locator("[data-action=edit]").click()
    page.fill(".turn-editor textarea", "Name a fruit")
    upstream.behaviour.reply = "An apple."
    page.click(".turn-editor button[type=submit]")
    wait_for_answer(page, "An apple.")

    page.locator(".turn-user").first.hover()
    page.locator(".turn-user [aria-label='Previous version']").first.click()
    wait_until(page, "document.querySelector('.turn-user .turn-body')?.textContent.trim() === 'Name a colour'")
    assert answer_text(page) == "The first answer."  # as the reader left it, not the newest answer
    assert versions_label(page.locator(".turn-assistant")) == "1/2"
    page.reload()
    assert answer_text(page) == "The first answer."
    assert page.recorder.console_errors == []
