"""Assistants and model continuity in Chromium: an assistant made on the personalization page, picked with `@` in the
composer (keyboard only), its chat with starters (light, dark, phone), its link used by another user; an answer
regenerated with another model, and a stopped answer continued; axe audits of the new parts."""

import pytest

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until
from tests.browser.test_accessibility import AXE, assert_clean

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]:not(.turn-step)"
INSTRUCTIONS = "You tutor physics with one worked example per answer."


def make_assistant(page, *, shared: bool = False) -> str:
    """Make the tutor on the personalization page; returns its link (the page shows it when shared)."""
    page.goto("/personal/")
    page.fill("#assistant_emoji", "🧲")
    page.fill("#assistant_name", "Physics tutor")
    page.fill("#assistant_instructions", INSTRUCTIONS)
    page.fill("#assistant_starters", "Explain inertia\nQuiz me on optics")
    if shared:
        page.check("#assistant_shared")
    page.click("#assistant-add button[type=submit]")
    item = page.locator(".assistant-list-settings > li")
    assert item.count() == 1
    return page.locator(".assistant-list-settings a", has_text="Start a chat").get_attribute("href")


def test_an_assistant_made_on_the_page_is_picked_with_at_and_answers_with_its_instructions(
        make_page, server, upstream):
    page = make_page()
    page.add_init_script(path=str(AXE))
    sign_up(page)
    make_assistant(page, shared=True)
    page.locator(".assistant-list-settings summary").click()
    assert "assistant:" in page.locator(".assistant-list-settings").inner_text()
    assert_clean(page, "assistants-settings")
    screenshot(page, "assistants-settings", full_page=True)

    page.goto("/")
    assert page.locator(".sidebar-assistants .assistant-link").inner_text().strip().endswith("Physics tutor")
    composer = page.locator("#composer-input")
    composer.focus()
    page.keyboard.type("@phy")
    option = page.locator("#assistant-menu [role=option]")
    option.first.wait_for()
    assert option.count() == 1 and "Physics tutor" in option.inner_text()
    assert composer.get_attribute("aria-activedescendant") == "assistant-option-0"
    assert_clean(page, "assistant-menu")
    screenshot(page, "assistant-mention")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?assistant=*")
    assert page.locator(".chat-heading .assistant-chip").inner_text().strip() == "🧲 Physics tutor"
    assert page.locator(".assistant-intro .suggestion").all_inner_texts() == ["Explain inertia", "Quiz me on optics"]
    assert_clean(page, "assistant-chat")

    upstream.behaviour.reply = "Inertia is a body's resistance to a change in its motion."
    page.locator(".assistant-intro .suggestion", has_text="Explain inertia").click()
    page.wait_for_selector(COMPLETE_ANSWER)
    [request] = upstream.chat_requests
    assert INSTRUCTIONS in request.messages[0]["content"]
    assert request.messages[-1] == {"role": "user", "content": "Explain inertia"}
    page.reload()
    assert page.locator(".chat-heading .assistant-chip").is_visible()  # the chat keeps its assistant
    screenshot(page, "assistant-chat-light")
    assert page.recorder.console_errors == []


def test_a_shared_assistants_link_works_for_another_user_who_cannot_change_it(make_page, server, upstream):
    owner = make_page()
    sign_up(owner)
    link = make_assistant(owner, shared=True)

    other = make_page()
    sign_up(other)
    other.goto(link)
    assert other.locator(".assistant-intro h2").inner_text() == "Physics tutor"
    send_message(other, "What is a newton?")
    other.wait_for_selector(COMPLETE_ANSWER)
    assert INSTRUCTIONS in upstream.chat_requests[-1].messages[0]["content"]
    other.reload()
    assert "Physics tutor" in other.locator(".sidebar-assistants").inner_text()  # listed once used
    assert other.request.get("/api/v1/assistants/").json()["results"] == []  # not theirs to change
    other.goto("/personal/")
    assert other.locator(".assistant-list-settings").count() == 0
    assert owner.recorder.console_errors == [] and other.recorder.console_errors == []


@pytest.mark.parametrize(("scheme", "width"), [("dark", 1280), ("light", 390)])
def test_an_assistants_new_chat_in_dark_and_on_a_phone(make_page, server, upstream, scheme, width):
    page = make_page(color_scheme=scheme, width=width, height=780)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    link = make_assistant(page)
    page.goto(link)
    page.locator(".assistant-intro").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    assert_clean(page, f"assistant-chat-{scheme}-{width}")
    screenshot(page, f"assistant-chat-{scheme}-{width}")
    assert page.recorder.console_errors == []


VIEWS = [("light", 1280), ("dark", 1280), ("light", 390)]


def _named(name: str, scheme: str, width: int) -> str:
    return name if (scheme, width) == ("light", 1280) else f"{name}-{scheme}-{width}"


@pytest.mark.parametrize(("scheme", "width"), VIEWS)
def test_regenerate_with_another_model_adds_a_version_labelled_with_it(make_page, server, upstream, scheme, width):
    page = make_page(color_scheme=scheme, width=width)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    upstream.behaviour.reply = "Blue."
    send_message(page, "Name a colour")
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text=Blue.")
    wait_until(page, "!document.querySelector('.chat.is-busy')")

    upstream.behaviour.reply = "Green, says the mini model."
    page.locator(".turn-assistant").last.hover()
    page.click(".turn-assistant [data-action=regenerate-with]")
    page.locator("#regenerate-dialog[open]").wait_for()
    assert_clean(page, "regenerate-dialog")
    screenshot(page, _named("regenerate-with", scheme, width))
    page.click("#regenerate-dialog button[value=fake-model-mini]")
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text=Green, says the mini model.")
    answer = page.locator(".turn-assistant").last
    assert answer.locator(".turn-model").inner_text() == "fake-model-mini"
    assert answer.locator(".turn-versions-label").inner_text().replace(" ", "") == "2/2"
    assert upstream.chat_requests[-1].body["model"] == "fake-model-mini"
    assert page.locator("#model-picker").input_value() == ""  # the chat keeps the site default
    answer.locator("[aria-label='Previous version']").click()
    wait_until(page, "document.querySelector('.turn-assistant .turn-model')?.textContent === 'fake-model'")
    screenshot(page, _named("regenerate-with-versions", scheme, width))
    assert page.recorder.console_errors == []


@pytest.mark.parametrize(("scheme", "width"), VIEWS)
def test_a_stopped_answer_continues_and_grows(make_page, server, upstream, scheme, width):
    upstream.behaviour.tokens = 200
    upstream.behaviour.token_delay = 0.05
    page = make_page(color_scheme=scheme, width=width)
    sign_up(page)
    send_message(page, "Write a long story")
    wait_until(page, "(document.querySelector('.streaming-text')?.textContent || '').length > 20")
    page.click("#composer-stop")
    page.wait_for_selector(".turn-assistant[data-status=cancelled]")
    stopped_text = page.locator(".turn-assistant template.turn-raw").evaluate("t => t.content.textContent")
    continue_button = page.locator(".turn-assistant [data-action=continue-answer]")
    assert continue_button.is_visible()
    screenshot(page, _named("continue-offered", scheme, width))

    upstream.behaviour.tokens = None
    upstream.behaviour.token_delay = 0
    upstream.behaviour.reply = "And they lived happily ever after."
    answer_id = page.locator(".turn-assistant").get_attribute("data-turn-id")
    continue_button.click()
    page.wait_for_selector(f"{COMPLETE_ANSWER} >> text=happily ever after")
    answer = page.locator(".turn-assistant")
    assert answer.count() == 1 and answer.get_attribute("data-turn-id") == answer_id  # the same answer grew
    grown = answer.locator("template.turn-raw").evaluate("t => t.content.textContent")
    assert grown == stopped_text + "And they lived happily ever after."
    request = upstream.chat_requests[-1]
    assert request.messages[-2] == {"role": "assistant", "content": stopped_text}
    assert answer.locator("[data-action=continue-answer]").count() == 0
    screenshot(page, _named("continue-done", scheme, width))
    assert page.recorder.console_errors == []
