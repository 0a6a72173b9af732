"""The profile page in Chromium: an API key is shown once, works against the API, and can be revoked."""

from tests.browser.helpers import screenshot, send_message, sign_up


def test_api_key_create_show_once_use_and_revoke(make_page, server, upstream):
    page = make_page()
    sign_up(page)
    send_message(page, "Use some tokens")
    page.wait_for_selector(".turn-assistant[data-status=complete]")

    page.goto("/accounts/profile/")
    assert int(page.locator(".usage-number").inner_text()) > 0
    page.fill("#id_name", "laptop script")
    page.click(".inline-form button[type=submit]")
    raw_key = page.locator("#new-key-value").inner_text()
    assert raw_key.startswith("cs_")
    page.click("[data-action=copy-text]")
    assert page.evaluate("navigator.clipboard.readText()") == raw_key
    screenshot(page, "profile")

    response = page.request.get("/api/v1/conversations/", headers={"Authorization": f"Bearer {raw_key}"})
    assert response.ok

    page.reload()
    assert page.locator("#new-key-value").count() == 0
    assert raw_key not in page.content()

    page.click(".keys button.btn-danger")  # dismissed confirm: nothing happens
    assert page.locator(".keys tr.revoked").count() == 0
    page.recorder.accept_dialogs = True
    page.click(".keys button.btn-danger")
    page.wait_for_selector(".keys tr.revoked")
    assert len(page.recorder.dialogs) == 2
    revoked = page.request.get("/api/v1/conversations/", headers={"Authorization": f"Bearer {raw_key}"})
    assert revoked.status == 401
    assert page.recorder.console_errors == []
