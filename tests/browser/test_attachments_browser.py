"""Attachments in Chromium: by the paperclip button, by drag and drop, and by pasting; chips before sending,
thumbnails and download chips in the thread after; a refused file says why."""

import base64

from tests.browser.helpers import screenshot, send_message, sign_up

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"

# Drop (or paste) a file built in the page, as a user's drag from the desktop (or Ctrl+V) delivers it.
DELIVER = """([how, name, type, base64]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type}));
  if (how === "paste") {
    document.getElementById("composer-input").dispatchEvent(
      new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
  } else {
    const chat = document.getElementById("chat");
    for (const kind of ["dragover", "drop"]) {
      chat.dispatchEvent(new DragEvent(kind, {dataTransfer: data, bubbles: true, cancelable: true}));
    }
  }
}"""


def deliver(page, how: str, name: str, content_type: str, data: bytes) -> None:
    page.evaluate(DELIVER, [how, name, content_type, base64.b64encode(data).decode()])


def test_attach_by_button_drop_and_paste(make_page, upstream, tmp_path):
    page = make_page()
    sign_up(page)
    notes = tmp_path / "notes.md"
    notes.write_text("# Shopping\n\n- apples\n- pears\n")
    page.set_input_files("#composer-file", str(notes))  # the paperclip button's file picker
    deliver(page, "drop", "table.csv", "text/csv", b"fruit,count\napples,3\n")
    deliver(page, "paste", "screenshot.png", "image/png", base64.b64decode(PNG_B64))
    page.wait_for_selector("#composer-files .pending-file:not(.is-uploading) >> text=screenshot.png")
    page.wait_for_selector("#composer-files >> text=notes.md")
    page.wait_for_selector("#composer-files >> text=table.csv")
    assert page.locator("#composer-files .pending-thumb").count() == 1
    assert page.input_value("#composer-input") == ""  # the pasted image did not become text
    screenshot(page, "attachments-composer")

    send_message(page, "What do these files say?")
    page.wait_for_selector(COMPLETE_ANSWER)
    sent = upstream.chat_requests[-1].messages[-1]["content"]
    text = sent[0]["text"]
    assert text.startswith("What do these files say?")
    assert '<file name="notes.md">' in text and "- apples" in text and "fruit,count" in text
    assert sent[1]["image_url"]["url"] == "data:image/png;base64," + PNG_B64
    assert page.locator("#composer-files .pending-file").count() == 0
    user_turn = page.locator(".turn-user").last
    assert user_turn.locator(".attachment-thumb").count() == 1
    assert user_turn.locator(".attachment-chip").count() == 2

    page.reload()  # as the server renders it
    user_turn = page.locator(".turn-user").last
    user_turn.locator(".attachment-thumb").wait_for()
    assert page.evaluate("document.querySelector('.turn-user .attachment-thumb').naturalWidth") == 1
    assert user_turn.locator(".attachment-chip", has_text="table.csv").get_attribute("download") == "table.csv"
    screenshot(page, "attachments-thread")


def test_a_refused_file_says_why_and_is_not_kept(make_page, upstream):
    page = make_page(color_scheme="dark")
    sign_up(page)
    deliver(page, "drop", "program.exe", "application/octet-stream", b"MZ\x00\x00binary")
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    assert "program.exe" in page.inner_text("#composer-error")
    assert "not supported" in page.inner_text("#composer-error")
    assert page.locator("#composer-files .pending-file").count() == 0
    screenshot(page, "attachments-refused-dark")


def test_removing_a_chip_before_sending(make_page, upstream):
    page = make_page(width=400, height=800)
    sign_up(page)
    deliver(page, "paste", "draft.txt", "text/plain", b"not for sending")
    chip = page.locator("#composer-files .pending-file:not(.is-uploading)", has_text="draft.txt")
    chip.wait_for()
    screenshot(page, "attachments-phone")
    chip.locator(".pending-remove").click()
    assert page.locator("#composer-files .pending-file").count() == 0
    send_message(page, "just text")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert isinstance(upstream.chat_requests[-1].messages[-1]["content"], str)
    assert "not for sending" not in upstream.chat_requests[-1].messages[-1]["content"]
