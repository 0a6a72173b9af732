"""Knowledge in Chromium: create a base, upload a document and watch it indexed (by a real task worker beside the
server), chat with the base attached, see the citation chip under the answer and open the passage it cites; an answer
that cites nothing lists the passages searched, folded; light, dark and phone screenshots."""

import re

from tests.browser.helpers import run_task_worker, screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"
HANDBOOK = (
    "# Travel\n\nBook trains two weeks ahead. Hotels are booked by the office.\n\n"
    "# Project Heron\n\nThe launch code for project Heron is 7-ALPHA-93. Only leads may use it.\n"
)


def cite_what_was_given(upstream) -> None:
    """The fake model quotes the passage holding "launch code" from its system prompt, citing its number."""

    def answer(recorded):
        system = recorded.messages[0]["content"]
        for number, text in re.findall(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', system, re.S):
            if "launch code" in text:
                upstream.behaviour.reply = f"The launch code is 7-ALPHA-93 [{number}]."
                return
        upstream.behaviour.reply = "The documents do not say."

    upstream.on_request = answer


def base_with_document(page, server, document) -> None:
    """A base named Handbook holding `document`, indexed by the task worker."""
    page.goto("/knowledge/")
    page.fill("#id_name", "Handbook")
    page.fill("#id_description", "How the team works")
    page.click("#base-create button[type=submit]")
    page.wait_for_selector("#knowledge-base")
    page.set_input_files("#document-file", str(document))
    page.click("#document-upload button[type=submit]")
    row = page.locator(".knowledge-document")
    row.wait_for()
    assert row.get_attribute("data-status") == "queued"
    run_task_worker(server)
    wait_until(page, "document.querySelector('.knowledge-document').dataset.status === 'ready'")
    assert "1 passage" in row.locator(".document-status").inner_text()


def chat_with_the_base(page) -> None:
    page.goto("/")
    page.click(".chat-tools [data-action=toggle-settings]")
    page.locator(".knowledge-setting label", has_text="Handbook").locator("input").check()


def test_a_chat_with_a_knowledge_base_cites_the_passage_it_used(make_page, server, upstream, tmp_path):
    page = make_page()
    sign_up(page)
    document = tmp_path / "handbook.md"
    document.write_text(HANDBOOK)
    base_with_document(page, server, document)
    screenshot(page, "knowledge-base", full_page=True)

    chat_with_the_base(page)
    cite_what_was_given(upstream)
    send_message(page, "What is the launch code for project Heron?")
    page.wait_for_selector(COMPLETE_ANSWER)
    chip = page.locator(f"{COMPLETE_ANSWER} .citation-chip")
    chip.wait_for()
    assert chip.inner_text() == "handbook.md"
    assert "[1]" in page.locator(f"{COMPLETE_ANSWER} .turn-body").inner_text()
    assert page.locator(f"{COMPLETE_ANSWER} .turn-searched").count() == 0
    page.click(".chat-tools [data-action=toggle-settings]")
    screenshot(page, "knowledge-citation")

    with page.context.expect_page() as opened:
        chip.click()
    passage_page = opened.value
    passage_page.wait_for_load_state()
    mark = passage_page.locator("mark#passage")
    assert "7-ALPHA-93" in mark.inner_text()
    screenshot(passage_page, "knowledge-passage")
    assert page.recorder.console_errors == []


def test_an_answer_citing_nothing_lists_the_passages_searched(make_page, server, upstream, tmp_path):
    """The embedded model often answers from a passage without writing [1]: the passages it was given are listed
    under the answer, folded, both as the answer arrives and after a reload; the keyboard opens the list."""
    page = make_page()
    sign_up(page)
    document = tmp_path / "hangar.md"
    document.write_text("# Hangar\n\nThe hangar door code is 5512-KESTREL. Change it every spring.\n")
    base_with_document(page, server, document)
    chat_with_the_base(page)
    upstream.behaviour.reply = "The hangar door code is 5512-KESTREL."
    send_message(page, "What is the hangar door code?")
    page.click(".chat-tools [data-action=toggle-settings]")

    for arrived in ("live", "reloaded"):
        answer = page.locator(COMPLETE_ANSWER)
        answer.wait_for()
        searched = answer.locator("details.turn-searched")
        searched.wait_for()
        assert answer.locator(".citation-chip").count() == 0, arrived
        assert searched.get_attribute("open") is None, arrived  # folded
        summary = searched.locator("summary")
        assert summary.inner_text() == "Searched 1 passage from the documents", arrived
        link = searched.get_by_role("link", name="hangar.md")
        assert not link.is_visible()
        if arrived == "live":
            screenshot(page, "knowledge-searched-folded")
        summary.focus()
        page.keyboard.press("Enter")
        link.wait_for()
        assert re.fullmatch(r"/knowledge/passages/\d+/#passage", link.get_attribute("href")), arrived
        if arrived == "live":
            screenshot(page, "knowledge-searched-open")
            page.emulate_media(color_scheme="dark")
            wait_until(page, "document.documentElement.dataset.theme === 'dark'")
            screenshot(page, "knowledge-searched-dark")
            page.emulate_media(color_scheme="light")
            page.reload()

    with page.context.expect_page() as opened:
        link.click()
    passage_page = opened.value
    passage_page.wait_for_load_state()
    assert "5512-KESTREL" in passage_page.locator("mark#passage").inner_text()
    assert page.recorder.console_errors == []


def test_knowledge_pages_in_dark_and_on_a_phone(make_page, server, upstream):
    for name, options in (("knowledge-dark", {"color_scheme": "dark"}),
                          ("knowledge-phone", {"width": 390, "height": 844})):
        page = make_page(**options)
        sign_up(page)
        page.goto("/knowledge/")
        page.fill("#id_name", "Handbook")
        page.click("#base-create button[type=submit]")
        page.wait_for_selector("#knowledge-base")
        screenshot(page, name, full_page=True)
        assert page.recorder.console_errors == []
