"""Group sharing in Chromium: a prompt and an assistant Alice shares with her group reach Bob, a member, in his `/`
menu and his sidebar, read-only; light, dark and phone screenshots of what Bob sees."""

import pytest

from tests.browser.helpers import screenshot, sign_up, wait_until


def _csrf(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def _group_of(server, name: str, usernames: list[str]) -> int:
    server.db.query("INSERT INTO auth_group (name) VALUES (%s)", (name,))
    [(group_id,)] = server.db.query("SELECT id FROM auth_group WHERE name = %s", (name,))
    for username in usernames:
        [(user_id,)] = server.db.query("SELECT id FROM accounts_user WHERE username = %s", (username,))
        server.db.query("INSERT INTO accounts_user_groups (user_id, group_id) VALUES (%s, %s)", (user_id, group_id))
    return group_id


@pytest.mark.parametrize(("scheme", "width"), [("light", 1280), ("dark", 1280), ("light", 390)])
def test_a_prompt_and_an_assistant_shared_with_a_group_reach_its_members(make_page, server, upstream, scheme, width):
    alice = make_page()
    alice_name = sign_up(alice)
    bob = make_page(color_scheme=scheme, width=width, height=800)
    bob_name = sign_up(bob)
    carol = make_page()
    sign_up(carol)
    group_id = _group_of(server, f"team-{alice_name}", [alice_name, bob_name])

    prompt = alice.request.post("/api/v1/prompts/", headers={"X-CSRFToken": _csrf(alice)}, data={
        "command": "standup", "title": "Stand-up notes", "content": "Summarize {{notes}} as a stand-up.",
        "groups": [group_id],
    })
    assert prompt.status == 201, prompt.text()
    assistant = alice.request.post("/api/v1/assistants/", headers={"X-CSRFToken": _csrf(alice)}, data={
        "name": "Team helper", "emoji": "T", "instructions": "Help the team.", "groups": [group_id],
    })
    assert assistant.status == 201, assistant.text()

    for page, sees in ((bob, True), (carol, False)):
        page.goto("/")
        page.locator("#composer-input").focus()
        page.keyboard.type("/stand")
        if sees:
            wait_until(page, "document.querySelectorAll('#prompt-menu [role=option]').length === 1")
            assert "Stand-up notes" in page.locator("#prompt-menu [role=option]").first.inner_text()
        else:
            page.wait_for_timeout(300)
            assert page.locator("#prompt-menu [role=option]").count() == 0
        assert ("Team helper" in page.locator("body").inner_text()) is sees  # the sidebar's assistants
    screenshot(bob, f"shared-prompt-{scheme}-{width}")

    # Bob uses them; he cannot change them (the owner's alone).
    assert bob.request.patch(f"/api/v1/prompts/{prompt.json()['id']}/", headers={"X-CSRFToken": _csrf(bob)},
                             data={"title": "mine now"}).status == 404
    assert bob.request.patch(f"/api/v1/assistants/{assistant.json()['id']}/", headers={"X-CSRFToken": _csrf(bob)},
                             data={"name": "mine now"}).status == 404
    assert bob.recorder.console_errors == []
