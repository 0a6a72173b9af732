"""The model picker in the chat header: always shown, keyboard-operable, and the model it shows is the one that
answers the next message (on a new chat and on an existing one). The browser server offers two models
(CHAT_MODELS in tests/browser/conftest.py); fake-model is the site default."""

import uuid

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"


def stored_chat(server, username):
    """(conversation id, its model, the models of its answers, oldest first) for the user's one chat."""
    [(conversation_id, model)] = server.db.query(
        "SELECT c.id, c.model FROM conversations_conversation c JOIN accounts_user u ON u.id = c.owner_id "
        "WHERE u.username = %s", (username,))
    answers = server.db.query(
        "SELECT model FROM conversations_turn WHERE conversation_id = %s AND role = 'assistant' "
        "ORDER BY position, id", (conversation_id,))
    return str(uuid.UUID(str(conversation_id))), model, [row[0] for row in answers]  # SQLite keeps it as hex


def shown_model(page) -> str:
    return page.evaluate("document.getElementById('model-picker').selectedOptions[0].textContent")


def test_the_picked_model_answers_on_a_new_and_an_existing_chat(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)
    # A new chat shows the site default; the picker is a labelled native select.
    assert shown_model(page) == "fake-model"
    assert page.get_by_label("Model", exact=True).evaluate("element => element.id") == "model-picker"
    offered = ["fake-model", "fake-model-mini", "fake-tool-model"]
    assert page.locator("#model-picker option").all_inner_texts() == offered

    # Chosen from the keyboard on the new chat: the chat is created with it and it answers.
    page.focus("#model-picker")
    page.keyboard.press("ArrowDown")
    assert shown_model(page) == "fake-model-mini"
    send_message(page, "Which model are you?")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert upstream.chat_requests[-1].body["model"] == "fake-model-mini"
    conversation_id, model, answers = stored_chat(server, username)
    assert (model, answers) == ("fake-model-mini", ["fake-model-mini"])
    page.reload()
    assert shown_model(page) == "fake-model-mini"

    # On the existing chat: saved at once, through the conversation's API, and the next message uses it even
    # when it is sent right after the choice.
    page.select_option("#model-picker", label="fake-model")
    send_message(page, "And now?")
    wait_until(page, f"document.querySelectorAll('{COMPLETE_ANSWER}').length === 2")
    assert upstream.chat_requests[-1].body["model"] == "fake-model"
    _id, model, answers = stored_chat(server, username)
    assert (model, answers) == ("", ["fake-model-mini", "fake-model"])  # "": the chat follows the site default
    page.reload()
    assert shown_model(page) == "fake-model"
    assert page.locator(".chat-settings #setting-model").count() == 0  # one model control, never two that differ
    assert page.recorder.console_errors == []


def test_a_choice_that_cannot_be_saved_goes_back_to_the_chats_model(make_page, server, upstream):
    page = make_page()
    username = sign_up(page)
    page.select_option("#model-picker", label="fake-model-mini")
    send_message(page, "Hello")
    page.wait_for_selector(COMPLETE_ANSWER)
    conversation_id, _model, _answers = stored_chat(server, username)
    # Deleted meanwhile (in another tab): the choice is refused, and the picker shows the model the chat had.
    token = page.input_value("input[name=csrfmiddlewaretoken] >> nth=0")
    assert page.request.delete(f"/api/v1/conversations/{conversation_id}/", headers={"X-CSRFToken": token}).ok
    page.select_option("#model-picker", label="fake-model")
    page.wait_for_selector("#composer-error:not(.is-hidden)")
    wait_until(page, "document.getElementById('model-picker').selectedOptions[0].textContent === 'fake-model-mini'")


def test_the_picker_in_both_themes_and_at_phone_width(make_page, server, upstream):
    for scheme in ("light", "dark"):
        page = make_page(color_scheme=scheme)
        sign_up(page)
        screenshot(page, f"model-picker-new-chat-{scheme}")
        page.select_option("#model-picker", label="fake-model-mini")
        send_message(page, "A question for the smaller model")
        page.wait_for_selector(COMPLETE_ANSWER)
        screenshot(page, f"model-picker-chat-{scheme}")
        # Settings keeps the system prompt only; opening it focuses that.
        page.click(".chat-tools [data-action=toggle-settings]")
        assert page.evaluate("document.activeElement.id") == "setting-system-prompt"
        screenshot(page, f"model-picker-settings-{scheme}")

    page = make_page(width=390, height=780)
    sign_up(page)
    picker = page.locator("#model-picker")
    assert picker.is_visible()
    screenshot(page, "model-picker-phone-new-chat")
    send_message(page, "A fairly long first message that makes a long title for the header")
    page.wait_for_selector(COMPLETE_ANSWER)
    wait_until(page, "document.getElementById('chat-title').textContent.startsWith('A fairly long')")
    # The picker sits under the title: the title keeps its room and the header's buttons stay on screen.
    assert page.locator("#chat-title").bounding_box()["width"] >= 200
    box = picker.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert box["height"] >= 24  # WCAG 2.2 target size
    for button in (".head-new-chat", "#export-links summary", "[data-action=toggle-settings]"):
        assert page.locator(f".chat-tools {button}").is_visible()
    screenshot(page, "model-picker-phone-chat")
