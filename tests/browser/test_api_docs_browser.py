"""The API docs (Swagger UI, vendored by drf-spectacular-sidecar) render in Chromium from local assets only."""

import pytest

from tests.browser.helpers import screenshot, sign_up

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_with_no_request_leaving_the_site(make_page, server):
    page = make_page()
    sign_up(page)  # the docs, like the API, are for logged-in users and API-key holders
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=30_000)
    paths = page.locator(".opblock-summary-path")
    paths.filter(has_text="/api/v1/conversations/{conversation_id}/turns/").first.wait_for()
    paths.filter(has_text="/v1/chat/completions").first.wait_for()
    path = screenshot(page, "api-docs")

    assert path.exists()
    off_site = [url for url in page.recorder.requests if not url.startswith(server.url) and not url.startswith("data:")]
    assert off_site == []
    assert any("/static/drf_spectacular_sidecar/" in url for url in page.recorder.requests)
    assert page.recorder.console_errors == []
