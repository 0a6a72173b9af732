"""The admin's usage page in a real Chromium, light, dark and at phone width: a seeded month drawn as SVG charts
beside their tables, under the strict CSP, nothing blocked; and a user's own usage page."""

import pytest
from django.urls import reverse
from playwright.sync_api import sync_playwright

from conversations.tests.admin_support import make_reviewer
from teams.tests.conftest import make_group  # noqa: F401 (fixture)
from teams.tests.test_dashboard import seeded_month  # noqa: F401 (fixture)
from tests.browser.helpers import launch_chromium, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # As in test_admin_browser: the ORM writes and reads strictly in turn with the browser calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def make_page(transactional_db, live_server_127):
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)

        def make(*, scheme: str, width: int, height: int = 900):
            context = browser.new_context(base_url=live_server_127.url, color_scheme=scheme,
                                          viewport={"width": width, "height": height})
            page = context.new_page()
            page.problems = []
            page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
            page.on("console", lambda message: message.type == "error" and page.problems.append(
                f"{message.text} {message.location}"))
            page.on("response", lambda response: response.status >= 400 and page.problems.append(
                f"{response.status} {response.url}"))
            return page

        yield make
        browser.close()


def log_in(page, path, username, password):
    page.goto(f"{reverse('admin:login')}?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{path}")


@pytest.mark.parametrize(("scheme", "width", "name"), [
    ("light", 1440, "usage-dashboard-light"), ("dark", 1440, "usage-dashboard-dark"),
    ("light", 390, "usage-dashboard-phone"),
])
def test_the_usage_dashboard_light_dark_and_on_a_phone(make_page, seeded_month, make_user, password,  # noqa: F811
                                                       scheme, width, name):
    page = make_page(scheme=scheme, width=width)
    log_in(page, reverse("admin_usage"), make_reviewer(make_user).username, password)
    page.wait_for_selector("svg.usage-chart")
    assert page.locator("svg.usage-chart").count() == 6
    bars = page.locator("svg.usage-chart").first.locator("rect.bar").evaluate_all(
        "bars => bars.map(bar => bar.getBBox().height)"
    )
    assert len(bars) == 30 and max(bars) > 0
    assert page.locator("#usage-per-group tbody tr").count() == 3  # analysts, interns, in no group
    # Nothing wider than the screen but the tables' own scrolling boxes.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0 or width > 800, overflow
    screenshot(page, name, full_page=True)
    assert page.problems == []


def test_a_users_own_usage_page_in_dark_on_a_phone(make_page, seeded_month, password):  # noqa: F811
    users, expected = seeded_month
    page = make_page(scheme="dark", width=390, height=780)
    page.goto(reverse("login"))
    page.fill("#id_username", "alice")
    page.fill("#id_password", password)
    page.click("main form.form [type=submit]")
    page.wait_for_selector("#composer-input")
    page.goto(reverse("teams:usage"))
    page.wait_for_selector("#usage-chart")
    assert page.locator("#usage-chart rect.bar").count() == 30
    screenshot(page, "usage-own-phone-dark", full_page=True)
    assert page.problems == []
