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


def test_a_message_of_files_only_can_be_sent(make_page, upstream, tmp_path):
    page = make_page()
    sign_up(page)
    assert page.is_disabled("#composer-send")
    notes = tmp_path / "notes.md"
    notes.write_text("# Shopping\n\n- apples\n")
    page.set_input_files("#composer-file", str(notes))
    page.wait_for_selector("#composer-files .pending-file:not(.is-uploading) >> text=notes.md")
    assert page.is_enabled("#composer-send")  # no typed text needed
    page.click("#composer-send")
    page.wait_for_selector(COMPLETE_ANSWER)
    text = upstream.chat_requests[-1].messages[-1]["content"]
    text = text if isinstance(text, str) else text[0]["text"]
    assert text.lstrip().startswith('<file name="notes.md">')  # no typed text: the message is the file
    assert "- apples" in text
    assert page.locator(".turn-user .attachment-chip", has_text="notes.md").count() == 1
    assert page.is_disabled("#composer-send")  # the files went with the message


def test_files_over_the_per_message_limit_are_refused_when_added(make_page, upstream, tmp_path):
    page = make_page()
    sign_up(page)
    paths = []
    for number in range(1, 8):
        path = tmp_path / f"file{number}.txt"
        path.write_text(f"file number {number}\n")
        paths.append(str(path))
    page.set_input_files("#composer-file", paths[:2])
    page.wait_for_selector("#composer-files .pending-file:not(.is-uploading) >> text=file2.txt")
    page.set_input_files("#composer-file", paths[2:])  # 5 more: 2 + 5 is over the limit of 5
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    error = page.inner_text("#composer-error")
    assert "At most 5 files per message" in error
    assert "file6.txt, file7.txt not attached" in error
    page.wait_for_selector("#composer-files .pending-file:not(.is-uploading) >> text=file5.txt")
    assert page.locator("#composer-files .pending-file").count() == 5
    assert page.locator("#composer-files >> text=file6.txt").count() == 0
    screenshot(page, "attachments-limit")

    send_message(page, "Five files")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert page.locator(".turn-user .attachment-chip").count() == 5


def test_a_file_over_the_size_limit_says_the_limit(make_page, upstream, server):
    page = make_page(width=390, height=844)
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
    assert page.inner_text("#composer-error") == "huge.txt is too large: the limit is 10.0\xa0MB per file."
    assert page.locator("#composer-files .pending-file").count() == 0
    assert not any(url.endswith("/api/v1/attachments/") for url in page.recorder.requests)  # never uploaded
    screenshot(page, "attachments-too-large-phone")
