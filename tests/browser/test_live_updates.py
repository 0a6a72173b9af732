"""Every window up to date, in Chromium: a second window of the same user follows an answer started in the first,
and sees its renames, pins, new chats and deletions without a reload; another user's window sees none of it.
Error banners leave when they stop being true."""

import shutil

from tests.browser.helpers import HOME_URL, PASSWORD, ROOT, screenshot, send_message, sign_up, wait_until
from tests.browser.test_accessibility import AXE, assert_clean

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"
LISTENING = "document.getElementById('chat').dataset.live === 'listening'"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def second_window(page):
    """Another tab of the same browser: the same user, signed in with the same session."""
    other = page.context.new_page()
    other.set_default_timeout(15_000)
    other.errors = []
    other.on("pageerror", lambda error: other.errors.append(str(error)))
    other.add_init_script(path=str(AXE))
    other.goto(page.url)
    wait_until(other, LISTENING)
    return other


def row(page, chat_id):
    return page.locator(f"#history .history-item[data-id='{chat_id}']")


def row_action(page, chat_id, action):
    item = row(page, chat_id)
    item.locator("summary").click()
    item.locator(f"[data-action={action}]").click()


def start_chat(page, text: str, reply: str, upstream) -> str:
    upstream.behaviour.reply = reply
    send_message(page, text)
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text={reply}")
    wait_until(page, "!document.querySelector('.chat.is-busy')")
    return page.evaluate("document.getElementById('chat').dataset.conversationId")


def test_a_second_window_follows_answers_renames_pins_new_chats_and_deletions(make_page, server, upstream):
    first = make_page()
    sign_up(first)
    chat_id = start_chat(first, "Hello", "The first answer.", upstream)
    wait_until(first, LISTENING)
    second = second_window(first)
    stranger = make_page()  # another user, listening to their own stream
    sign_up(stranger)
    wait_until(stranger, LISTENING)

    # An answer started in the first window is written live in the second, then stored with its actions.
    upstream.behaviour.reply = "A story told slowly, word after word, to be read in two windows at once."
    upstream.behaviour.token_delay = 0.08
    send_message(first, "Tell me a story")
    second.wait_for_selector(".turn-user >> text=Tell me a story")
    second.wait_for_selector(".turn-assistant.status-streaming")
    wait_until(second, "document.querySelector('.chat').classList.contains('is-busy')")  # Stop is offered here too
    assert not second.is_hidden("#composer-stop")
    second.wait_for_selector(f"{COMPLETE_ANSWER} >> text=read in two windows at once.")
    assert second.locator(".turn").count() == 4
    wait_until(second, "!document.querySelector('.chat.is-busy')")
    upstream.behaviour.token_delay = 0.0

    # Regenerated in the first window: the second follows the new version and gets its switcher.
    upstream.behaviour.reply = "Another version of the story."
    first.locator(".turn-assistant").last.hover()
    first.click(".turn-assistant:last-child [data-action=regenerate]")
    second.wait_for_selector(f"{COMPLETE_ANSWER} >> text=Another version of the story.")
    wait_until(second, "document.querySelector('.turn-assistant:last-child .turn-versions-label')"
                       "?.textContent.replace(/\\s/g, '') === '2/2'")

    # Renamed in the first window: the second's header and sidebar row follow.
    row_action(first, chat_id, "rename")
    first.fill("#dialog-input", "Stories at night")
    first.click("#dialog-ok")
    wait_until(second, "document.getElementById('chat-title').textContent === 'Stories at night'")
    assert row(second, chat_id).locator(".history-link").inner_text().strip() == "Stories at night"

    # Pinned in the first window: listed under Pinned in the second.
    row_action(first, chat_id, "pin")
    second.wait_for_selector(f".history-item[data-pinned='1'][data-id='{chat_id}']")
    assert second.locator("#history .history-group").first.inner_text() == "Pinned"

    # A new chat started in the first window is listed in the second, with its title.
    first.goto("/")
    new_id = start_chat(first, "Plan a picnic", "Bring bread.", upstream)
    row(second, new_id).locator("text=Plan a picnic").wait_for()

    # Deleted in the first window while open in the second: the second says so and sends nothing more.
    first.goto(f"/c/{chat_id}/")
    row_action(first, chat_id, "delete")
    first.click("#dialog-ok")
    second.wait_for_selector("#chat-gone:not(.is-hidden)")
    assert "deleted in another window" in second.inner_text("#chat-gone")
    assert second.is_disabled("#composer-input")
    row(second, chat_id).wait_for(state="detached")
    assert_clean(second, "chat-deleted-elsewhere")

    # The other user heard of none of it.
    assert stranger.locator("#history .history-item").count() == 0
    assert second.errors == []
    assert first.recorder.console_errors == []


def test_a_row_menu_open_here_stays_open_when_another_window_moves_a_chat(make_page, server, upstream):
    """A pin made elsewhere reloads the sidebar's rows: the menu the user has open is open on the new row, and works."""
    first = make_page()
    sign_up(first)
    older = start_chat(first, "Groceries", "Milk and eggs.", upstream)
    first.goto("/")
    newer = start_chat(first, "Trip to Busan", "Take the KTX.", upstream)
    wait_until(first, LISTENING)
    second = second_window(first)
    row(second, newer).locator("summary").click()
    second.wait_for_selector(f".history-item[data-id='{newer}'] [data-action=archive]", state="visible")

    row_action(first, older, "pin")  # the second window's rows are reloaded: the older chat moves under Pinned
    second.wait_for_selector(f".history-item[data-pinned='1'][data-id='{older}']")
    assert second.locator(f".history-item[data-id='{newer}'] details.item-menu[open]").count() == 1
    assert second.is_visible(f".history-item[data-id='{newer}'] [data-action=archive]")
    second.click(f".history-item[data-id='{newer}'] [data-action=archive]")  # the reopened menu's items work
    row(second, newer).wait_for(state="detached")
    assert second.errors == []


def test_screenshots_of_an_answer_followed_from_another_window(make_page, server, upstream):
    for name, options in (
        ("live-updates-light", {}), ("live-updates-dark", {"color_scheme": "dark"}),
        ("live-updates-phone", {"width": 390, "height": 844}),
    ):
        first = make_page(**options)
        sign_up(first)
        chat_id = start_chat(first, "Hello", "Hello! How can I help?", upstream)
        other_id = start_chat_in_new_tab(first, upstream)
        second = first.context.new_page()
        second.set_viewport_size(first.viewport_size)
        second.goto(f"/c/{chat_id}/")
        wait_until(second, LISTENING)
        upstream.behaviour.reply = "Here is a plan for the week: rest on Monday, run on Tuesday, swim on Wednesday."
        upstream.behaviour.tokens = 400
        upstream.behaviour.token_delay = 0.03
        first.goto(f"/c/{chat_id}/")
        send_message(first, "Make me a training plan")
        second.wait_for_selector(".turn-assistant.status-streaming >> text=rest on Monday")
        wait_until(second, f"!!document.querySelector(\".history-item[data-id='{other_id}']\")")
        path = screenshot(second, name)
        shutil.copy(path, DOCS_SCREENSHOTS / f"{name}.png")
        first.click("#composer-stop")
        second.wait_for_selector(".turn-assistant[data-status=cancelled]")
        upstream.behaviour.tokens = None
        upstream.behaviour.token_delay = 0.0


def start_chat_in_new_tab(page, upstream) -> str:
    """A chat started in another tab (listed in the first by its event)."""
    tab = page.context.new_page()
    tab.goto("/")
    chat_id = start_chat(tab, "Ideas for dinner", "Soup.", upstream)
    tab.close()
    return chat_id


def test_the_busy_error_leaves_when_the_answer_is_stopped_in_another_window(make_page, server, upstream):
    first = make_page()
    sign_up(first)
    start_chat(first, "Hello", "Hi.", upstream)
    wait_until(first, LISTENING)
    second = second_window(first)
    upstream.behaviour.reply = "A long answer that takes its time."
    upstream.behaviour.tokens = 400
    upstream.behaviour.token_delay = 0.05
    send_message(first, "Write a lot")
    second.wait_for_selector(".turn-assistant.status-streaming")
    send_message(second, "And another thing")
    second.wait_for_selector("#composer-error:not(.is-hidden)")
    assert "still being written" in second.inner_text("#composer-error")
    second.click("#history-search")  # moving on does not make it untrue: the answer is still being written
    assert not second.is_hidden("#composer-error")

    first.click("#composer-stop")
    second.wait_for_selector(".turn-assistant[data-status=cancelled]")
    second.wait_for_selector("#composer-error", state="hidden")
    upstream.behaviour.tokens = None
    upstream.behaviour.token_delay = 0.0


def test_a_folder_name_error_leaves_when_the_user_moves_on(make_page, server):
    page = make_page()
    sign_up(page)
    for _attempt in range(2):
        page.click("[data-action=new-folder]")
        page.fill("#dialog-input", "Work")
        page.click("#dialog-ok")
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    assert "already have a project" in page.inner_text("#composer-error")
    page.click(".folder-btn >> text=Work")
    page.wait_for_selector("#composer-error", state="hidden")


def test_a_refused_file_error_leaves_at_the_next_action(make_page, server, tmp_path):
    page = make_page()
    sign_up(page)
    page.evaluate("""() => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(10 * 1024 * 1024 + 1)], "huge.txt", {type: "text/plain"}));
      const chat = document.getElementById("chat");
      for (const kind of ["dragover", "drop"]) {
        chat.dispatchEvent(new DragEvent(kind, {dataTransfer: data, bubbles: true, cancelable: true}));
      }
    }""")
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    notes = tmp_path / "notes.txt"
    notes.write_text("a small file\n")
    page.set_input_files("#composer-file", str(notes))
    page.wait_for_selector("#composer-files .pending-file >> text=notes.txt")
    assert page.is_hidden("#composer-error")


def make_project(page, name: str) -> None:
    page.click("[data-action=new-folder]")
    page.wait_for_selector("#dialog[open]")
    page.fill("#dialog-input", name)
    page.click("#dialog-ok")
    page.wait_for_selector(f".folder-row >> text={name}")


def delete_project(page, name: str, *, with_chats: bool) -> None:
    project = page.locator(".folder-row", has_text=name)
    project.hover()
    project.locator("[data-action=delete-folder]").click()
    page.click("#dialog-ok")
    wait_until(page, "document.getElementById('dialog-message').textContent.includes('chats in this project')")
    page.wait_for_selector("#dialog[open]")
    page.click("#dialog-ok" if with_chats else "#dialog-cancel")


def move_chat(page, chat_id: str, folder: int | None) -> int:
    """The move the history's "Move to project" makes, from this page: the response's status."""
    return page.evaluate("""async ([id, folder]) => {
        const token = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/)[1];
        const response = await fetch(`/c/${id}/organize/`, {
            method: "POST", credentials: "same-origin", body: JSON.stringify({ folder }),
            headers: { "X-CSRFToken": decodeURIComponent(token), "Content-Type": "application/json" } });
        return response.status;
    }""", [chat_id, folder])


def folder_names(page) -> list[str]:
    return [name.strip() for name in page.locator("#folder-list .folder-name").all_inner_texts()]


def test_a_second_window_sees_projects_made_renamed_and_deleted_elsewhere(make_page, server, upstream):
    first = make_page()
    sign_up(first)
    wait_until(first, LISTENING)
    second = second_window(first)
    stranger = make_page()
    sign_up(stranger)
    wait_until(stranger, LISTENING)

    # Made in the first window: listed in the second, with a working link to its page.
    make_project(first, "Travel")
    second.wait_for_selector("#folder-list .folder-row >> text=Travel")
    assert folder_names(second) == ["Travel"]
    project_url = first.get_attribute(".folder-row .folder-open", "href")
    assert second.get_attribute(".folder-row .folder-open", "href") == project_url

    # Renamed on its page in the first window: the second's row and its labels follow.
    first.goto(project_url)
    first.fill("#id_name", "Trips abroad")
    first.click("#project-form button[type=submit]")
    first.wait_for_selector("#project-heading >> text=Trips abroad")
    wait_until(second, "document.querySelector('#folder-list .folder-name')?.textContent === 'Trips abroad'")
    assert second.get_attribute(".folder-row .folder-open", "aria-label") == "Open project Trips abroad"
    assert second.get_attribute(".folder-row .folder-delete", "aria-label") == "Delete project Trips abroad"
    first.goto("/")
    make_project(first, "Recipes")
    second.wait_for_selector("#folder-list .folder-row >> text=Recipes")
    screenshot(second, "live-projects")

    # A chat in "Trips abroad", open in the second window; the project is deleted in the first with its chats kept:
    # the row goes, the chat is back in the main list and in no project.
    first.click(".folder-btn >> text=Trips abroad")
    chat_id = start_chat(first, "Pack for Lisbon", "Bring a light jacket.", upstream)
    second.goto(f"/c/{chat_id}/")
    wait_until(second, LISTENING)
    assert second.text_content("#project-chip").split()[-2:] == ["Trips", "abroad"]
    # Moved to "Recipes" in the first window, and back: the open chat's chip follows, with its link.
    recipes = second.get_attribute(".folder-row:has-text('Recipes')", "data-folder-id")
    trips = second.get_attribute(".folder-row:has-text('Trips abroad')", "data-folder-id")
    for folder, name in ((recipes, "Recipes"), (trips, "Trips abroad")):
        assert move_chat(first, chat_id, int(folder)) == 200
        wait_until(second, f"document.getElementById('project-chip')?.textContent.endsWith({name!r})")
        assert second.get_attribute("#project-chip", "href").endswith(f"/projects/{folder}/")
    assert move_chat(first, chat_id, None) == 200
    second.wait_for_selector("#project-chip", state="detached")
    assert move_chat(first, chat_id, int(trips)) == 200
    second.wait_for_selector("#project-chip")
    first.goto("/")
    delete_project(first, "Trips abroad", with_chats=False)
    first.wait_for_selector(".folder-row >> text=Trips abroad", state="detached")
    second.wait_for_selector(".folder-row >> text=Trips abroad", state="detached")
    assert folder_names(second) == ["Recipes"]
    second.wait_for_selector("#project-chip", state="detached")
    row(second, chat_id).wait_for()
    assert second.is_hidden("#chat-gone")

    # A chat in "Recipes", open in the second window; the project is deleted in the first with its chats: the second
    # says the chat is gone and lists neither.
    first.click(".folder-btn >> text=Recipes")
    soup_id = start_chat(first, "A soup for winter", "Leek and potato.", upstream)
    second.goto(f"/c/{soup_id}/")
    wait_until(second, LISTENING)
    delete_project(first, "Recipes", with_chats=True)
    second.wait_for_selector("#chat-gone:not(.is-hidden)")
    assert second.is_disabled("#composer-input")
    assert folder_names(second) == []
    row(second, soup_id).wait_for(state="detached")
    first.wait_for_url(HOME_URL)  # the first window had the deleted chat open: it leaves it
    assert_clean(second, "project-deleted-elsewhere")

    assert stranger.locator("#folder-list .folder-row").count() == 0
    assert second.errors == []
    assert first.recorder.console_errors == []


def test_a_window_of_an_account_closed_elsewhere_says_so(make_page, server, upstream):
    first = make_page()
    sign_up(first)
    chat_id = start_chat(first, "Hello", "Hi.", upstream)
    wait_until(first, LISTENING)
    second = second_window(first)
    row(second, chat_id).wait_for()

    first.recorder.accept_dialogs = True
    first.goto("/accounts/profile/")
    first.fill("#delete-password", PASSWORD)
    first.click("form[action$='/account/delete/'] button[type=submit]")
    second.wait_for_selector("#account-closed:not(.is-hidden)")
    assert "closed in another window" in second.inner_text("#account-closed")
    assert second.is_disabled("#composer-input")
    assert second.locator("#history .history-item").count() == 0
    assert second.get_attribute("#account-closed a", "href").startswith("/accounts/login/")
    screenshot(second, "live-account-closed")


def test_a_temporary_chat_open_when_its_time_is_up_says_it_is_gone(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    page.click("[data-action=toggle-temporary]")
    chat_id = start_chat(page, "Nobody needs to see this", "Noted.", upstream)
    # Its time is almost up (the page learns the time when it loads it).
    soon = (
        "now() + interval '4 seconds'" if server.db.is_postgres
        else "strftime('%Y-%m-%d %H:%M:%f', 'now', '+4 seconds')"
    )
    server.db.query(
        f"UPDATE conversations_conversation SET delete_after = {soon} WHERE id = %s",  # noqa: S608 (our own SQL)
        (chat_id.replace("-", ""),),
    )
    page.reload()
    wait_until(page, LISTENING)
    assert page.is_hidden("#chat-gone")
    page.wait_for_selector("#chat-gone:not(.is-hidden)", timeout=20_000)
    assert "expired" in page.inner_text("#chat-gone")
    assert page.is_disabled("#composer-input")
