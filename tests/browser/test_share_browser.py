"""Share links in Chromium: made from the chat's menu, read without an account, revoked from the list."""

from tests.browser.helpers import PASSWORD, screenshot, send_message, sign_up

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
    page.click("[data-action=copy-share]")
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
    screenshot(page, "shared-links")
    page.recorder.accept_dialogs = True
    row.locator("button[type=submit]").click()
    page.wait_for_selector("text=The link is revoked")
    assert "Revoked" in page.locator("table.shares tbody tr").inner_text()
    gone = make_page().goto(url)
    assert gone.status == 404
    assert PASSWORD not in page.content()
