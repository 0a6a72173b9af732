"""WCAG 2.2 AA in Chromium: axe-core (vendored in tests/browser/vendor) audits the main pages in both themes and
at phone width, and no serious or critical violation is allowed."""

import json
from pathlib import Path

import pytest

from tests.browser.helpers import screenshot, send_message, sign_up

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"
ANSWER = (
    "Here is **bold**, a [link](https://example.com/docs), a list and code:\n\n- one\n- two\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\ndef hello():\n    return 'hi'\n```\n\nAnd `inline code`."
)


def audit(page, name: str) -> list[dict]:
    """Run axe on the page as it is; the serious and critical violations, with where they are."""
    results = page.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}}); "
        "return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, "
        "nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary)})); }",
        WCAG_TAGS,
    )
    screenshot(page, f"a11y-{name}")
    return [violation for violation in results if violation["impact"] in ("serious", "critical")]


def assert_clean(page, name: str) -> None:
    serious = audit(page, name)
    assert serious == [], f"{name}: " + json.dumps(serious, indent=1)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_main_pages_have_no_serious_axe_violations(make_page, server, upstream, scheme):
    upstream.behaviour.reply = ANSWER
    page = make_page(color_scheme=scheme)
    page.add_init_script(path=str(AXE))
    page.goto("/accounts/login/")
    assert_clean(page, f"login-{scheme}")
    page.goto("/accounts/signup/")
    assert_clean(page, f"signup-{scheme}")

    sign_up(page)
    assert_clean(page, f"chat-empty-{scheme}")

    send_message(page, "Show me some formatting")
    page.wait_for_selector(COMPLETE_ANSWER)
    page.locator(f"{COMPLETE_ANSWER} [data-rating='1']").click()  # the comment box shows too
    page.wait_for_selector(".feedback-comment:not(.is-hidden)")
    assert_clean(page, f"chat-answers-{scheme}")

    page.click(".history-tab[data-archived='1']")  # the history list, archived tab
    page.wait_for_selector(".history-empty")
    assert_clean(page, f"history-archived-{scheme}")
    page.click(".history-tab[data-archived='0']")

    page.click("#export-links summary")
    page.click("[data-action=share]")
    page.click("#share-create")
    page.wait_for_selector("#share-result:not(.is-hidden)")
    assert_clean(page, f"share-dialog-{scheme}")
    url = page.input_value("#share-url")
    page.click("[data-action=close-share]")

    page.goto("/accounts/profile/")
    assert_clean(page, f"profile-{scheme}")
    page.goto("/shares/")
    assert_clean(page, f"shared-links-{scheme}")

    reader = make_page(color_scheme=scheme)
    reader.add_init_script(path=str(AXE))
    reader.goto(url)
    assert_clean(reader, f"share-page-{scheme}")


def test_phone_width_has_no_serious_axe_violations(make_page, server, upstream):
    upstream.behaviour.reply = ANSWER
    page = make_page(width=390, height=780)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    send_message(page, "Formatting on a phone")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert_clean(page, "chat-phone")
    page.click("[data-action=open-sidebar]")
    assert_clean(page, "chat-phone-sidebar")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_project_pages_have_no_serious_axe_violations(make_page, server, upstream, scheme):
    """A project's page (its form, a refused save's errors) and a new chat in it, the project open in the sidebar."""
    page = make_page(color_scheme=scheme)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    page.click("[data-action=new-folder]")
    page.fill("#dialog-input", "Reading list")
    page.click("#dialog-ok")
    page.goto(page.get_attribute(".folder-row .folder-open", "href"))
    assert_clean(page, f"project-{scheme}")
    page.fill("#id_name", "")
    page.evaluate("document.getElementById('id_name').removeAttribute('required')")  # the server's refusal
    page.click("#project-form button[type=submit]")
    page.wait_for_selector(".field-error")
    assert_clean(page, f"project-errors-{scheme}")
    page.click("#project-new-chat")
    page.wait_for_selector("#composer-input")
    assert_clean(page, f"project-new-chat-{scheme}")
