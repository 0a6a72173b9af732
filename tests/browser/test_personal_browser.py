"""Personalization in Chromium: the memory page, "Memory saved" with its undo, and the composer's `/` prompt menu
(keyboard only), with axe audits of the new page and of the open menu."""

import json

import pytest

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until
from tests.browser.test_accessibility import AXE, assert_clean

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"


def test_memories_are_added_edited_and_deleted_on_the_page(make_page, server, upstream):
    page = make_page()
    page.add_init_script(path=str(AXE))
    sign_up(page)
    page.goto("/personal/")
    page.fill("#id_about_me", "I teach physics.")
    page.uncheck("#id_memory_enabled")
    page.click("#instructions-form button[type=submit]")
    assert page.locator("#id_about_me").input_value() == "I teach physics."
    assert not page.locator("#id_memory_enabled").is_checked()

    page.fill("#memory-add input[name=content]", "Has a cat named Miso.")
    page.click("#memory-add button[type=submit]")
    memory = page.locator(".memory-list .memory")
    assert memory.count() == 1
    memory.locator("input[name=content]").fill("Has two cats.")
    memory.locator("button", has_text="Save").click()
    assert page.locator(".memory-list .memory input[name=content]").input_value() == "Has two cats."
    assert_clean(page, "personal-light")
    screenshot(page, "personal", full_page=True)

    page.locator(".memory-list .memory button.btn-danger").click()
    page.wait_for_selector(".memory-list", state="detached")
    assert page.recorder.console_errors == []


def test_memory_saved_by_the_model_shows_and_undoes_in_one_click(make_page, server, upstream):
    upstream.behaviour.tool_rounds = 1
    upstream.behaviour.tool_script = [("remember", json.dumps({"fact": "Prefers metric units."}))]
    upstream.behaviour.reply = "Noted."
    page = make_page()
    sign_up(page)
    page.select_option("#model-picker", label="fake-tool-model")
    send_message(page, "Remember that I prefer metric units.")
    page.wait_for_selector(COMPLETE_ANSWER)
    note = page.locator(".memory-saved")
    note.wait_for()
    assert "Prefers metric units." in note.inner_text()
    assert page.request.get("/api/v1/memories/").json()["count"] == 1
    screenshot(page, "memory-saved")

    note.locator("[data-action=undo-memory]").click()
    wait_until(page, "document.querySelector('.memory-saved').textContent === 'Memory removed.'")
    assert page.request.get("/api/v1/memories/").json()["count"] == 0
    assert page.recorder.console_errors == []


def test_the_slash_menu_inserts_a_prompt_with_its_blanks_filled(make_page, server, upstream):
    page = make_page()
    page.add_init_script(path=str(AXE))
    sign_up(page)
    for command, title, content in (("fix", "Fix grammar", "Fix the grammar: {{text}}"),
                                    ("tr", "Translate", "Translate {{text}} into {{language}}."),
                                    ("hi", "Greeting", "Hello there!")):
        response = page.request.post("/api/v1/prompts/", data={"command": command, "title": title, "content": content},
                                     headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies()
                                                                  if c["name"] == "csrftoken")})
        assert response.status == 201, response.text()
    page.goto("/")
    composer = page.locator("#composer-input")
    composer.focus()

    # "/" lists them; Escape closes without sending or changing the text.
    page.keyboard.type("/")
    menu = page.locator("#prompt-menu [role=option]")
    menu.first.wait_for()
    assert menu.count() == 3
    assert_clean(page, "prompt-menu")
    page.keyboard.press("Escape")
    assert page.locator("#prompt-menu").is_hidden()
    assert composer.input_value() == "/"

    # Typing narrows the menu; arrows move; Enter inserts a prompt without blanks as it is.
    page.keyboard.type("h")
    wait_until(page, "document.querySelectorAll('#prompt-menu [role=option]').length === 1")
    page.keyboard.press("Enter")
    assert composer.input_value() == "Hello there!"
    assert page.locator(".turn").count() == 0  # inserted, not sent

    # A prompt with blanks asks for them first, then the filled text waits in the composer.
    composer.fill("")
    page.keyboard.type("/")
    menu.first.wait_for()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    selected = page.locator("#prompt-menu [aria-selected=true]")
    assert selected.inner_text() == "/tr Translate"
    assert composer.get_attribute("aria-activedescendant") == selected.get_attribute("id")
    page.keyboard.press("Enter")
    page.locator("#prompt-dialog[open]").wait_for()
    assert_clean(page, "prompt-dialog")
    page.keyboard.type("good morning")
    page.keyboard.press("Tab")
    page.keyboard.type("Korean")
    page.keyboard.press("Enter")
    assert composer.input_value() == "Translate good morning into Korean."
    assert page.evaluate("document.activeElement.id") == "composer-input"
    screenshot(page, "prompt-inserted")
    assert page.recorder.console_errors == []


@pytest.mark.parametrize(("scheme", "width"), [("dark", 1280), ("light", 390)])
def test_the_personalization_page_in_dark_and_on_a_phone(make_page, server, upstream, scheme, width):
    page = make_page(color_scheme=scheme, width=width, height=780)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    page.goto("/personal/")
    page.fill("#memory-add input[name=content]", "Has a cat named Miso.")
    page.click("#memory-add button[type=submit]")
    page.fill("#prompt_command", "tr")
    page.fill("#prompt_title", "Translate")
    page.fill("#prompt_content", "Translate {{text}} into {{language}}.")
    page.click("#prompt-add button[type=submit]")
    assert page.locator(".memory-list .memory").count() == 1
    assert page.locator(".prompt-list .prompt").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    assert_clean(page, f"personal-{scheme}-{width}")
    screenshot(page, f"personal-{scheme}-{width}", full_page=True)
