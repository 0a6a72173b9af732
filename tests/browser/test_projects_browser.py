"""Projects in Chromium: make a project, give it instructions, a default model and a file (indexed by a real task
worker beside the server), start a chat from the project, see the citation of the file under the answer and open
the passage it cites; the sidebar lists the chat inside the project, not in the main list; the model was sent the
project's instructions. Light, dark and phone screenshots."""

import re

from tests.browser.helpers import run_task_worker, screenshot, send_message, sign_up, wait_until
from tests.browser.test_live_updates import delete_project

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"
# Several passages long: the one cited is highlighted in the document, among the others.
NOTES = (
    "# Heron launch notes\n\n## Schedule\n\n"
    + "".join(f"Day {day}: the team checks the fuel lines, the radio and the weather for stage {day}.\n\n"
              for day in range(1, 26))
    + "## Access\n\nThe hangar door code for project Heron is 5512-KESTREL. Change it after the launch.\n"
)
INSTRUCTIONS = "Answer as the Heron launch checklist would, in one line."


def quote_the_door_code(upstream) -> None:
    """The fake model quotes the passage holding the door code from its system prompt, citing its number."""

    def answer(recorded):
        system = recorded.messages[0]["content"]
        for number, text in re.findall(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', system, re.S):
            if "hangar door code" in text:
                upstream.behaviour.reply = f"The door code is 5512-KESTREL [{number}]."
                return
        upstream.behaviour.reply = "The documents do not say."

    upstream.on_request = answer


def make_project(page, name: str) -> None:
    page.click("[data-action=new-folder]")
    page.wait_for_selector("#dialog[open]")
    page.fill("#dialog-input", name)
    page.click("#dialog-ok")
    page.wait_for_selector(f".folder-row >> text={name}")


def test_a_project_with_instructions_and_a_file_answers_with_a_citation(make_page, server, upstream, tmp_path):
    page = make_page()
    sign_up(page)
    make_project(page, "Heron launch")

    # Its page, by keyboard: from the project's button, Tab reaches its "Open project" link.
    page.focus(".folder-row .folder-btn")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Open project Heron launch"
    page.keyboard.press("Enter")
    page.wait_for_selector("#project-page")
    page.fill("#id_instructions", INSTRUCTIONS)
    page.select_option("#id_model", "fake-model-mini")
    page.click("#project-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Project saved.")
    assert page.input_value("#id_instructions") == INSTRUCTIONS
    assert page.input_value("#id_model") == "fake-model-mini"

    notes = tmp_path / "heron-notes.md"
    notes.write_text(NOTES)
    page.set_input_files("#document-file", str(notes))
    page.click("#document-upload button[type=submit]")
    row = page.locator(".knowledge-document")
    row.wait_for()
    assert row.locator(".document-name").inner_text() == "heron-notes.md"
    assert row.locator(".document-base").inner_text() == "Heron launch"  # the project's own base, named after it
    run_task_worker(server)
    wait_until(page, "document.querySelector('.knowledge-document').dataset.status === 'ready'")
    assert row.locator(".document-status").inner_text().endswith("passages")
    # The project's base is ticked among its knowledge bases (attached by the upload).
    page.reload()
    assert page.locator("#project-bases label", has_text="Heron launch").locator("input").is_checked()
    screenshot(page, "project-page", full_page=True)

    # A new chat from the project: in it, with its default model chosen.
    page.click("#project-new-chat")
    page.wait_for_selector("#composer-input")
    assert page.input_value("#model-picker") == "fake-model-mini"
    assert page.get_attribute(".folder-row .folder-btn", "aria-pressed") == "true"
    assert " ".join(page.text_content("#project-chip").split()) == "Project: Heron launch"  # its words, read aloud
    quote_the_door_code(upstream)
    send_message(page, "What is the hangar door code?")
    page.wait_for_selector(COMPLETE_ANSWER)
    chip = page.locator(f"{COMPLETE_ANSWER} .citation-chip")
    chip.wait_for()
    assert chip.inner_text() == "heron-notes.md"
    assert "5512-KESTREL [1]" in page.locator(f"{COMPLETE_ANSWER} .turn-body").inner_text()

    # What the model was sent: the project's instructions in the system prompt, with the model the project chose.
    [request] = upstream.chat_requests
    assert request.body["model"] == "fake-model-mini"
    assert f'Instructions for the project "Heron launch" this chat belongs to:\n{INSTRUCTIONS}' in (
        request.messages[0]["content"])

    # The sidebar: the chat is listed inside the project, not in the main list.
    chat_id = page.evaluate("document.getElementById('chat').dataset.conversationId")
    item = f".history-item[data-id='{chat_id}']"
    page.wait_for_selector(item)
    screenshot(page, "project-chat")
    page.click(".folder-btn >> text=Heron launch")  # pressed again: the main list
    page.wait_for_selector(item, state="detached")
    assert page.get_attribute(".folder-row .folder-btn", "aria-pressed") == "false"
    page.click(".folder-btn >> text=Heron launch")
    page.wait_for_selector(item)

    # After a reload the chat page still shows its project open, with the chat in it.
    page.reload()
    page.wait_for_selector(item)
    assert page.get_attribute(".folder-row .folder-btn", "aria-pressed") == "true"

    with page.context.expect_page() as opened:
        page.locator(f"{COMPLETE_ANSWER} .citation-chip").click()
    passage_page = opened.value
    passage_page.wait_for_load_state()
    mark = passage_page.locator("mark#passage")
    assert "5512-KESTREL" in mark.inner_text() and "Day 1:" not in mark.inner_text()
    assert "Day 1:" in passage_page.inner_text("body")  # the document around it, not highlighted
    # The page opens at the passage (far down the document), not at its top.
    assert passage_page.url.endswith("#passage")
    wait_until(passage_page, "(() => { const box = document.getElementById('passage').getBoundingClientRect();"
                             " return box.top >= 0 && box.top < window.innerHeight; })()")
    assert passage_page.evaluate("window.scrollY") > 0
    screenshot(passage_page, "project-passage")
    assert page.recorder.console_errors == []


def test_the_project_page_and_a_chat_in_it_in_dark_and_on_a_phone(make_page, server, upstream):
    for scheme, options in (("dark", {"color_scheme": "dark"}), ("phone", {"width": 390, "height": 844})):
        page = make_page(**options)
        sign_up(page)
        if scheme == "phone":
            page.click("[data-action=open-sidebar]")
            wait_until(page, "document.getElementById('sidebar').getBoundingClientRect().x >= 0")
        make_project(page, "Garden plans")
        project_url = page.get_attribute(".folder-row .folder-open", "href")
        page.goto(project_url)
        page.fill("#id_instructions", "Metric units only.")
        page.click("#project-form button[type=submit]")
        page.wait_for_selector(".flash >> text=Project saved.")
        screenshot(page, f"project-page-{scheme}", full_page=True)
        page.click("#project-new-chat")
        page.wait_for_selector("#composer-input")
        upstream.behaviour.reply = "Plant the beans 5 cm deep."
        send_message(page, "How deep do beans go?")
        page.wait_for_selector(COMPLETE_ANSWER)
        screenshot(page, f"project-chat-{scheme}")
        if scheme == "phone":  # the sidebar, slid in: the project open, with its chat
            page.click("[data-action=open-sidebar]")
            wait_until(page, "document.getElementById('sidebar').getBoundingClientRect().x >= 0")
            assert page.locator(".history-item").count() == 1
            screenshot(page, "project-sidebar-phone")
        assert page.recorder.console_errors == []


def test_a_file_uploads_with_its_progress_and_is_deleted_from_the_project_page(make_page, server, tmp_path):
    """The upload shows its percentage (the browser's upload throttled, so that there is one to see), then the new
    row appears without a reload and follows queued, then ready; its delete button asks first, and only a confirmed
    deletion deletes the file, its passages and vectors."""
    page = make_page()
    sign_up(page)
    make_project(page, "Kestrel")
    page.goto(page.locator("a[aria-label='Open project Kestrel']").get_attribute("href"))
    page.wait_for_selector("#project-page")
    page.evaluate("window.notReloaded = true")

    notes = tmp_path / "kestrel-notes.md"
    notes.write_text("# Kestrel notes\n\n" + "The kestrel hovers over the field before it dives.\n\n" * 8_000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {  # about 400 KB/s up: the 400 KB file takes a second or so
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 400_000})
    page.set_input_files("#document-file", str(notes))
    page.click("#document-upload button[type=submit]")
    wait_until(page, r"/^Uploading kestrel-notes\.md: [1-9]\d?%$/.test(document.getElementById('upload-status')"
                     r".textContent)")
    assert page.locator("#upload-progress").is_visible()
    screenshot(page, "project-file-uploading")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    row = page.locator(".knowledge-document")
    row.wait_for()
    assert page.locator("#upload-status").inner_text() == "Uploaded: it is being indexed."
    assert page.locator("#upload-progress").is_hidden()
    assert row.get_attribute("data-status") == "queued"
    assert row.locator(".document-status").inner_text() == "Queued for indexing"
    # The project's own base, made by this first upload, is among its bases, ticked: saving the form keeps it.
    assert page.locator("#project-bases label", has_text="Kestrel").locator("input").is_checked()
    run_task_worker(server)
    wait_until(page, "document.querySelector('.knowledge-document').dataset.status === 'ready'")
    assert re.fullmatch(r"\d+ passages", row.locator(".document-status").inner_text())
    wait_until(page, "document.getElementById('upload-status').textContent === ''")  # no stale "being indexed"
    assert page.evaluate("window.notReloaded === true")  # all of it without a reload
    document_id = int(row.get_attribute("data-document-id"))
    passages = server.db.query("SELECT COUNT(*) FROM knowledge_passage WHERE document_id = %s", (document_id,))
    assert passages[0][0] > 1
    screenshot(page, "project-file-ready", full_page=True)

    # Dismissed: nothing deleted.
    delete = row.locator("button", has_text="Delete")
    assert delete.get_attribute("aria-label") == "Delete kestrel-notes.md"
    delete.click()
    assert page.recorder.dialogs == [
        "Delete kestrel-notes.md? Its passages leave the search; answers that cited it keep their citations."]
    assert row.is_visible()
    assert server.db.query("SELECT COUNT(*) FROM knowledge_document WHERE id = %s", (document_id,)) == [(1,)]

    page.recorder.accept_dialogs = True
    delete.click()
    page.wait_for_selector(".flash >> text=Deleted kestrel-notes.md.")
    assert page.locator(".knowledge-documents").inner_text() == "No files yet."
    assert server.db.query("SELECT COUNT(*) FROM knowledge_document WHERE id = %s", (document_id,)) == [(0,)]
    assert server.db.query("SELECT COUNT(*) FROM knowledge_passage WHERE document_id = %s", (document_id,)) == [(0,)]
    screenshot(page, "project-file-deleted")
    assert page.recorder.console_errors == []


def make_base(page, name: str) -> None:
    page.goto("/knowledge/")
    page.fill("#id_name", name)
    page.click("#base-create button[type=submit]")
    page.wait_for_selector("#knowledge-base")


def base_box(page, name: str):
    return page.locator("#project-bases label", has_text=name).locator("input")


def test_an_upload_keeps_the_knowledge_bases_ticked_but_not_saved(make_page, server, tmp_path):
    """The upload brings the project's own base into the form without a reload; the boxes the user ticked or cleared
    there but has not saved keep the user's choice, and saving stores it."""
    page = make_page()
    sign_up(page)
    make_base(page, "Handbook")
    make_base(page, "Recipes")
    page.goto("/")
    make_project(page, "Osprey")
    page.goto(page.locator("a[aria-label='Open project Osprey']").get_attribute("href"))
    page.wait_for_selector("#project-page")
    base_box(page, "Handbook").check()
    page.click("#project-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Project saved.")
    assert base_box(page, "Handbook").is_checked() and not base_box(page, "Recipes").is_checked()

    # Changed, not saved: Handbook cleared, Recipes ticked.
    base_box(page, "Handbook").uncheck()
    base_box(page, "Recipes").check()
    notes = tmp_path / "osprey-notes.md"
    notes.write_text("# Osprey notes\n\nThe osprey nests on the old mast by the harbour.\n")
    page.set_input_files("#document-file", str(notes))
    page.click("#document-upload button[type=submit]")
    page.locator(".knowledge-document").wait_for()
    base_box(page, "Osprey").wait_for()  # the project's own base, made by the upload: the region was replaced
    assert base_box(page, "Osprey").is_checked()
    assert not base_box(page, "Handbook").is_checked()
    assert base_box(page, "Recipes").is_checked()

    page.click("#project-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Project saved.")
    assert [base_box(page, name).is_checked() for name in ("Handbook", "Recipes", "Osprey")] == [False, True, True]
    project_id = int(page.get_attribute("#project-page", "data-project-id"))
    saved = server.db.query(
        "SELECT b.name FROM knowledge_knowledgebase b JOIN knowledge_knowledgebase_projects pb"
        " ON pb.knowledgebase_id = b.id WHERE pb.project_id = %s ORDER BY b.name", (project_id,))
    assert saved == [("Osprey",), ("Recipes",)]


def test_the_project_page_follows_a_rename_new_instructions_and_a_deletion_elsewhere(make_page, server):
    page = make_page()
    sign_up(page)
    make_project(page, "Harrier")
    project_url = page.locator("a[aria-label='Open project Harrier']").get_attribute("href")
    page.goto(project_url)
    wait_until(page, "document.getElementById('project-page').dataset.live === 'listening'")
    page.fill("#id_name", "Marsh harrier")  # typed here, not saved

    # Another window of the same user renames the project and gives it instructions.
    other = page.context.new_page()
    other.goto(project_url)
    other.fill("#id_name", "Hen harrier")
    other.fill("#id_instructions", "Answer as a field guide would.")
    other.click("#project-form button[type=submit]")
    other.wait_for_selector(".flash >> text=Project saved.")

    wait_until(page, "document.getElementById('project-heading').textContent === 'Hen harrier'")
    assert page.title().startswith("Hen harrier · Project")
    wait_until(page, "document.getElementById('project-summary').textContent === 'Answer as a field guide would.'")
    assert page.locator("#project-summary").is_visible()
    assert page.input_value("#id_instructions") == "Answer as a field guide would."  # untouched: follows
    assert page.input_value("#id_name") == "Marsh harrier"  # edited here: the user's text stays
    assert page.is_hidden("#project-gone")

    # Deleted there: said here, with a way back, and nothing here can be sent any more.
    other.goto("/")
    delete_project(other, "Hen harrier", with_chats=False)
    page.wait_for_selector("#project-gone:not(.is-hidden)")
    assert page.locator("#project-gone").inner_text() == "This project was deleted in another window. Back to chats"
    assert page.get_attribute("#project-gone a", "href") == "/"
    assert page.is_disabled("#project-form button[type=submit]")
    assert page.is_disabled("#id_instructions")
    assert page.is_disabled("#document-upload button[type=submit]")
    assert page.is_hidden("#project-new-chat")
    screenshot(page, "project-deleted-elsewhere")
