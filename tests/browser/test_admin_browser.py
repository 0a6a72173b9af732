"""The review panel in a real Chromium: a reviewer searches, opens a chat with an XSS payload, nothing runs.

Own fixtures on purpose (pytest-django's live server on 127.0.0.1 + Playwright): the admin needs no
streaming, so the WSGI live server is enough, and the test data is written straight through the ORM.
"""


import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import sync_playwright

from conversations.models import Conversation, ReviewLog, Turn
from conversations.services.quota import usage_add
from conversations.tests.admin_support import XSS_PAYLOAD, add_exchange, make_conversation, make_reviewer
from tests.browser.helpers import launch_chromium, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread, so Django would refuse the ORM
    # calls that write test data and read the review log. They run strictly in turn with the browser
    # calls, never concurrently, which is the case this switch is for.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def admin_page(transactional_db, live_server_127):
    """A Chromium page on the live server. Function-scoped and after the database fixture, so the browser
    (and Playwright's event loop) is gone before the database is flushed at teardown."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(base_url=live_server_127.url, viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.problems = []
        page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
        page.on("console", lambda message: message.type == "error" and page.problems.append(
            f"{message.text} {message.location}"))
        page.on("response", lambda response: response.status >= 400 and page.problems.append(
            f"{response.status} {response.url}"))
        yield page
        browser.close()


def admin_login(page, username, password):
    page.goto(reverse("admin:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")




@pytest.fixture
def review_data(make_user):
    alice = make_user("alice")
    bob = make_user("bob")
    payload_chat = make_conversation(alice, "Payload chat", exchanges=0)
    add_exchange(payload_chat, "What is a zebracorn? " + XSS_PAYLOAD, "Here is the text:\n" + XSS_PAYLOAD,
                 rating=-1, comment=XSS_PAYLOAD, prompt_tokens=321, completion_tokens=54)
    usage_add(alice.pk, timezone.localdate(), prompt_tokens=321, completion_tokens=54)  # as answer_store does
    add_exchange(payload_chat, "and again?", "", status=Turn.Status.FAILED, error="The model is unavailable.")
    for number in range(12):
        make_conversation(bob if number % 3 else alice, f"Everyday chat {number}", exchanges=1 + number % 4)
    return payload_chat


def test_reviewer_searches_opens_a_chat_and_no_payload_runs(admin_page, review_data, make_user, password):
    page = admin_page
    reviewer = make_reviewer(make_user)
    admin_login(page, reviewer.username, password)

    page.goto(reverse("admin:conversations_conversation_changelist"))
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 13
    screenshot(page, "admin-list", full_page=True)

    page.fill("#searchbar", "zebracorn")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=zebracorn**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Payload chat" in rows.first.inner_text()

    rows.first.locator("th a").click()
    page.wait_for_selector(".review-turn-content")
    page.wait_for_load_state("load")

    # The payload is on the page as text, and nothing of it became an element or ran.
    contents = page.locator(".review-turn-content")
    assert "<script>window.__xss" in contents.nth(0).inner_text()
    assert "<img src=\"x\"" in contents.nth(1).inner_text()
    assert page.locator(".review-turn-content script, .review-turn-content img, .review-turn-content b").count() == 0
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("text=The model is unavailable.").count() == 1
    assert page.locator("input[name=title], input[name=_save]").count() == 0
    screenshot(page, "admin-detail", full_page=True)

    assert list(ReviewLog.objects.values_list("conversation_id", "reviewer_id")) == [(review_data.pk, reviewer.pk)]

    page.goto(reverse("admin_usage"))
    page.wait_for_selector("svg.usage-chart")
    bar_heights = page.locator("svg.usage-chart").first.locator("rect.bar").evaluate_all(
        "bars => bars.map(bar => bar.getBBox().height)"
    )
    assert len(bar_heights) == 30 and bar_heights[-1] > 0  # today's tokens are drawn
    screenshot(page, "admin-usage", full_page=True)

    # The admin's own scripts and styles load under the strict CSP, and nothing was blocked or failed.
    assert page.problems == []


def test_superuser_deletes_a_chat_in_the_browser(admin_page, review_data, make_user, password):
    page = admin_page
    root = make_user("root", is_staff=True, is_superuser=True)
    admin_login(page, root.username, password)
    page.goto(reverse("admin:conversations_conversation_delete", args=[review_data.pk]))
    page.click("input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert not Conversation.objects.filter(pk=review_data.pk).exists()
    assert page.problems == []


def test_the_conversation_list_fits_1280_pixels(admin_page, review_data, make_user, password):
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 800})
    admin_login(page, make_reviewer(make_user).username, password)
    page.goto(reverse("admin:conversations_conversation_changelist"))
    page.wait_for_selector("#result_list")
    screenshot(page, "admin-list-1280")
    results = page.locator("#changelist .results")
    assert results.evaluate("(el) => el.scrollWidth <= el.clientWidth")  # no column hidden behind a scroll bar
    headers = page.locator("#result_list thead th")
    assert headers.count() == 9
    for index in range(headers.count()):
        box = headers.nth(index).bounding_box()
        assert box["x"] + box["width"] <= 1280, headers.nth(index).inner_text()
