"""Share links in Chromium: made from the chat's menu, read without an account, revoked from the list; the files
sent in the chat shown through the link only when the owner includes them."""

import struct
import zlib
from pathlib import Path

from tests.browser.helpers import PASSWORD, screenshot, send_message, sign_up, wait_until
from tests.browser.test_accessibility import AXE, assert_clean

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def test_share_a_chat_read_it_logged_out_then_revoke_it(make_page, server, upstream):
    upstream.behaviour.reply = "Share **this** answer:\n\n```python\nprint('shared')\n```"
    page = make_page()
    username = sign_up(page)
    send_message(page, "Something worth sharing")
    page.wait_for_selector(COMPLETE_ANSWER)

    page.click("#export-links summary")
    page.click("[data-action=share]")
    page.wait_for_selector("#share-dialog[open]")
    assert "snapshot" in page.locator("#share-dialog").inner_text()
    page.fill("#share-name", "Kim")
    page.select_option("#share-expiry", "7")
    page.click("#share-create")
    page.wait_for_selector("#share-result:not(.is-hidden)")
    url = page.input_value("#share-url")
    assert "/s/" in url
    screenshot(page, "share-dialog")
    page.click("#share-result [data-action=copy-share]")
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.click("[data-action=close-share]")

    # Opened again, the dialog shows the chat's link (with its copy button) instead of making another one.
    page.click("#export-links summary")
    page.click("[data-action=share]")
    page.wait_for_selector("#share-current:not(.is-hidden)")
    assert page.input_value("#share-current-url") == url
    assert "A snapshot taken" in page.inner_text("#share-current-note")
    assert page.locator("#share-result").is_hidden()
    page.click("#share-current [data-action=copy-share]")
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.click("[data-action=close-share]")

    # Later messages stay out of the snapshot.
    send_message(page, "A later, private question")
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> nth=1")

    for scheme, width in (("light", 1280), ("dark", 1280), ("light", 390)):
        reader = make_page(color_scheme=scheme, width=width)
        response = reader.goto(url)
        assert response.status == 200
        assert response.headers["x-robots-tag"] == "noindex, nofollow"
        assert reader.get_attribute("meta[name=robots]", "content") == "noindex, nofollow"
        text = reader.locator("main").inner_text()
        assert "Something worth sharing" in text and "Shared by Kim" in text
        assert "A later, private question" not in text
        assert username not in reader.content()
        assert reader.locator(".markdown strong").inner_text() == "this"
        assert reader.locator(".logout-form").count() == 0
        screenshot(reader, f"share-page-{scheme}{'-phone' if width < 500 else ''}")

    page.goto("/shares/")
    row = page.locator("table.shares tbody tr")
    assert row.count() == 1 and "Kim" in row.inner_text()
    assert row.locator(".share-link a").inner_text() == url  # the whole link, to read or select
    row.get_by_role("button", name="Copy the link to Something worth sharing").click()
    assert page.evaluate("navigator.clipboard.readText()") == url
    screenshot(page, "shared-links")
    page.recorder.accept_dialogs = True
    row.locator("button[type=submit]").click()
    page.wait_for_selector("text=The link is revoked")
    assert "Revoked" in page.locator("table.shares tbody tr").inner_text()
    gone = make_page().goto(url)
    assert gone.status == 404
    assert PASSWORD not in page.content()


def png(width: int, height: int) -> bytes:
    """A small striped PNG, big enough to be seen in a screenshot."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def pixel(x: int, y: int) -> bytes:
        return bytes((40, 120 + y, 200 - y)) if (x // 12) % 2 else bytes((240, 180, 60))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def create_link(page, *, include_files: bool) -> str:
    page.click("#export-links summary")
    page.click("[data-action=share]")
    page.wait_for_selector("#share-dialog[open]")
    assert not page.is_checked("#share-files")  # off by default, every time the dialog opens
    if include_files:
        page.check("#share-files")
    page.click("#share-create")
    page.wait_for_selector("#share-result:not(.is-hidden)")
    return page.input_value("#share-url")


def test_share_with_files_shows_them_logged_out_and_without_files_shows_none(make_page, server, upstream, tmp_path):
    upstream.behaviour.reply = "A fine photo, and a sensible packing list."
    notes, photo = tmp_path / "packing-list.md", tmp_path / "harbour.png"
    notes.write_text("# Packing\n\n- umbrella\n- passport\n")
    photo.write_bytes(png(96, 64))
    page = make_page()
    sign_up(page)
    page.set_input_files("#composer-file", [str(notes), str(photo)])  # the paperclip button's file picker
    page.wait_for_selector("#composer-files .pending-file:not(.is-uploading) >> text=harbour.png")
    page.wait_for_selector("#composer-files .pending-file:not(.is-uploading) >> text=packing-list.md")
    send_message(page, "My trip photo and packing list")
    page.wait_for_selector(COMPLETE_ANSWER)
    page.locator(".turn-user .attachment-thumb").wait_for()

    with_files = create_link(page, include_files=True)
    help_text = page.inner_text("#share-files-help")
    assert "Off by default" in help_text
    screenshot(page, "share-dialog-files")
    page.click("[data-action=close-share]")
    without_files = create_link(page, include_files=False)
    page.click("[data-action=close-share]")
    assert with_files != without_files

    for scheme, width in (("light", 1280), ("dark", 1280), ("light", 390)):
        reader = make_page(color_scheme=scheme, width=width)  # a fresh context: logged out
        reader.add_init_script(path=str(AXE))
        assert reader.goto(with_files).status == 200
        assert reader.locator(".logout-form").count() == 0
        thumb = reader.locator(".turn-user .attachment-thumb")
        assert thumb.get_attribute("alt") == "harbour.png"
        image_path = thumb.get_attribute("src")
        assert image_path.startswith(f"{path_of(with_files)}files/")
        thumb.scroll_into_view_if_needed()
        wait_until(reader, "document.querySelector('.attachment-thumb').complete")  # loaded (or failed to)
        assert reader.evaluate("document.querySelector('.attachment-thumb').naturalWidth") == 96
        chip = reader.locator(".turn-user .attachment-chip", has_text="packing-list.md")
        with reader.expect_download() as download:
            chip.click()
        assert download.value.suggested_filename == "packing-list.md"
        assert Path(download.value.path()).read_bytes() == notes.read_bytes()
        reader.mouse.move(0, 0)  # no hover left on the chip in the screenshot
        screenshot(reader, f"share-page-files-{scheme}{'-phone' if width < 500 else ''}")
        assert_clean(reader, f"share-page-files-{scheme}-{width}")  # WCAG 2.2 AA (axe)

        assert reader.goto(without_files).status == 200
        assert "My trip photo and packing list" in reader.locator("main").inner_text()
        assert reader.locator(".turn-attachments, .attachment-thumb, .attachment-chip").count() == 0
        assert "harbour.png" not in reader.content() and "packing-list.md" not in reader.content()
        # The same file through the link without files: not found.
        assert reader.request.get(image_path.replace(path_of(with_files), path_of(without_files))).status == 404
        screenshot(reader, f"share-page-no-files-{scheme}{'-phone' if width < 500 else ''}")

    page.goto("/shares/")
    rows = page.locator("table.shares tbody tr")
    assert rows.count() == 2
    assert "Not included" in rows.nth(0).inner_text() and "Included (2 files)" in rows.nth(1).inner_text()
    screenshot(page, "shared-links-files")
