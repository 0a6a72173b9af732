"""The chat pages: access, ownership, rendering safety, the history list (groups, search, paging)."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations.models import Conversation, Feedback, Turn
from conversations.tests.factories import add_turns, conversation_with_history
from conversations.views import CHAT_PAGE_TURNS

pytestmark = pytest.mark.django_db


def make_conversation(owner, title="A chat", turns=(), **fields):
    conversation = Conversation.objects.create(owner=owner, title=title, **fields)
    if turns:
        add_turns(conversation, *turns)
    return conversation


def inline_scripts(html: str) -> list[str]:
    """<script> elements that are neither loaded from a URL nor JSON data."""
    return [
        tag for tag in re.findall(r"<script\b[^>]*>", html)
        if "src=" not in tag and 'type="application/json"' not in tag
    ]


# --- Access --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    # Fixed ids: pytest-xdist workers must collect the same test names (no chat is stored under them).
    "path", ["/", "/c/history/", "/c/5d4ee631-36ed-4823-8413-c643f787f75b/",
             "/c/c986cf34-5cd0-4e0f-9283-2972b41fa134/turns/", "/c/f97c42aa-902c-4f1d-b751-c617631f700f/turns/1/"]
)
def test_anonymous_users_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={path}"


def test_home_is_an_empty_new_chat(authenticated_client):
    response = authenticated_client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-conversation-id=""' in html
    assert 'id="composer-input"' in html
    assert "How can I help you today?" in html


def model_picker(html: str) -> list[tuple[str, str, bool]]:
    """The header's model picker as (value, name, selected) options."""
    select = re.search(r'<select id="model-picker"[^>]*>(.*?)</select>', html, re.S)
    assert select, "no model picker on the page"
    return [(value, name, bool(selected)) for value, selected, name in
            re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select.group(1))]


@pytest.fixture
def two_models(settings):
    settings.LLM_BACKEND = "openai"
    settings.OPENAI_MODEL = "model-a"
    settings.CHAT_MODELS = ["model-a", "model-b"]


def test_the_model_picker_shows_the_site_default_on_a_new_chat(authenticated_client, two_models):
    html = authenticated_client.get("/").content.decode()
    # The default's value is "": a chat created with it follows the site default.
    assert model_picker(html) == [("", "model-a", True), ("model-b", "model-b", False)]
    assert '<label class="model-picker-label" for="model-picker">Model</label>' in html
    assert 'id="setting-model"' not in html  # the picker is the page's one model control


@pytest.mark.parametrize(("stored", "shown"), [("", "model-a"), ("model-a", "model-a"), ("model-b", "model-b")])
def test_the_model_picker_shows_the_chats_model(authenticated_client, user, two_models, stored, shown):
    conversation = make_conversation(user, model=stored)
    options = model_picker(authenticated_client.get(conversation.get_absolute_url()).content.decode())
    assert [name for _value, name, selected in options if selected] == [shown]


@pytest.mark.parametrize(("last", "shown"), [("model-b", "model-b"), ("", "model-a"), ("retired-model", "model-a")])
def test_a_new_chat_starts_with_the_model_last_used(authenticated_client, user, other_user, two_models, last, shown):
    make_conversation(user, model="model-b", updated_at=timezone.now() - timedelta(days=1))
    make_conversation(user, model=last)
    make_conversation(other_user, model="model-b")  # another user's chats never count
    options = model_picker(authenticated_client.get("/").content.decode())
    assert [name for _value, name, selected in options if selected] == [shown]


def test_a_chat_on_a_model_no_longer_offered_still_shows_it(authenticated_client, user, two_models):
    conversation = make_conversation(user, model="retired-model")
    options = model_picker(authenticated_client.get(conversation.get_absolute_url()).content.decode())
    assert options[-1] == ("retired-model", "retired-model", True)


def test_with_one_model_offered_the_picker_is_its_name(authenticated_client, settings):
    settings.LLM_BACKEND = "openai"
    settings.OPENAI_MODEL = "only-model"
    settings.CHAT_MODELS = []
    html = authenticated_client.get("/").content.decode()
    assert 'id="model-picker"' not in html
    assert '<span class="model-name" id="model-name">only-model</span>' in html


def test_conversation_page_shows_its_turns(authenticated_client, user):
    conversation = make_conversation(user, "Trip plan", [("user", "Plan a trip"), ("assistant", "**Day 1**: Seoul")])
    response = authenticated_client.get(conversation.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-conversation-id="{conversation.pk}"' in html
    assert "Plan a trip" in html
    assert "<strong>Day 1</strong>: Seoul" in html
    assert f"/api/v1/conversations/{conversation.pk}/export/?format=md" in html


def test_another_users_conversation_is_not_found(authenticated_client, other_user):
    theirs = make_conversation(other_user, "Private", [("user", "secret"), ("assistant", "hidden")])
    assert authenticated_client.get(theirs.get_absolute_url()).status_code == 404
    turn = theirs.turns.get(position=2)
    assert authenticated_client.get(f"/c/{theirs.pk}/turns/{turn.pk}/").status_code == 404
    assert authenticated_client.get(f"/c/{uuid.uuid4()}/").status_code == 404


def test_turn_partial_is_checked_against_the_conversation_in_the_url(authenticated_client, user):
    mine = make_conversation(user, "Mine", [("user", "hi"), ("assistant", "hello *there*")])
    other = make_conversation(user, "Also mine", [("user", "x")])
    answer = mine.turns.get(position=2)
    response = authenticated_client.get(f"/c/{mine.pk}/turns/{answer.pk}/")
    assert response.status_code == 200
    assert "hello <em>there</em>" in response.content.decode()
    assert authenticated_client.get(f"/c/{other.pk}/turns/{answer.pk}/").status_code == 404


def test_pages_send_a_strict_csp_and_contain_no_inline_script(authenticated_client, user):
    conversation = make_conversation(user, "x", [("user", "hi"), ("assistant", "yo")])
    for path in ["/", conversation.get_absolute_url(), "/accounts/profile/"]:
        response = authenticated_client.get(path)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        html = response.content.decode()
        assert inline_scripts(html) == []
        assert not re.search(r"\son[a-z]+=", html), "inline event handler"
        assert " style=" not in html


# --- Rendering safety ------------------------------------------------------------------------------------

XSS = '<script>window.__xss()</script><img src=x onerror="window.__xss()">'


def test_user_text_titles_and_answers_are_inert(authenticated_client, user):
    conversation = make_conversation(
        user, XSS, [("user", f"{XSS}\nsecond line"), ("assistant", f"{XSS}\n\n[x](javascript:window.__xss())")]
    )
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert "<script>window.__xss" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;window.__xss()&lt;/script&gt;" in html
    # The user's newline is kept as text (shown by CSS white-space: pre-wrap), not turned into markup.
    assert "&lt;/script&gt;&lt;img src=x onerror=&quot;window.__xss()&quot;&gt;\nsecond line" in html


def test_answer_code_blocks_are_highlighted_with_classes(authenticated_client, user):
    conversation = make_conversation(user, "code", [("user", "code?"), ("assistant", "```python\nprint('hi')\n```")])
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert '<pre class="highlight"><code class="language-python"><span class="nb">print</span>' in html


def test_failed_answer_shows_its_error_and_a_retry_button(authenticated_client, user):
    conversation = make_conversation(user, "x", [("user", "hi")])
    add_turns(conversation, ("assistant", ""), status=Turn.Status.FAILED, error="The model service is unavailable.")
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert "The model service is unavailable." in html
    assert 'data-action="regenerate"' in html and "Retry" in html


def test_answer_shows_usage_and_stored_feedback(authenticated_client, user):
    conversation = make_conversation(user, "x", [("user", "hi")])
    answer = add_turns(conversation, ("assistant", "yo"), prompt_tokens=12, completion_tokens=30, model="fake-model")
    Feedback.objects.create(turn=answer, rating=-1)
    html = authenticated_client.get(f"/c/{conversation.pk}/turns/{answer.pk}/").content.decode()
    assert "42 tokens" in html and "fake-model" in html
    assert re.search(r'data-rating="-1" aria-pressed="true"', html)
    assert re.search(r'data-rating="1" aria-pressed="false"', html)


# --- History list ---------------------------------------------------------------------------------------


def set_updated(conversation, when):
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)


def history_ids(html: str) -> list[str]:
    return re.findall(r'class="history-item" data-id="([0-9a-f-]+)"', html)


def test_history_is_grouped_by_age_newest_first(authenticated_client, user):
    now = timezone.now()
    old = make_conversation(user, "Old one")
    week = make_conversation(user, "Three days ago")
    yesterday = make_conversation(user, "Yesterday's")
    today = make_conversation(user, "Today's")
    set_updated(old, now - timedelta(days=40))
    set_updated(week, now - timedelta(days=3))
    set_updated(yesterday, now - timedelta(days=1))
    set_updated(today, now)
    html = authenticated_client.get("/c/history/").content.decode()
    assert re.findall(r'class="history-group" data-group="(\w+)"', html) == ["today", "yesterday", "week", "older"]
    assert history_ids(html) == [str(c.pk) for c in (today, yesterday, week, old)]


def test_history_lists_only_the_users_own_conversations(authenticated_client, user, other_user):
    mine = make_conversation(user, "Mine")
    make_conversation(other_user, "Not mine")
    html = authenticated_client.get("/c/history/").content.decode()
    assert history_ids(html) == [str(mine.pk)]
    assert "Not mine" not in html


def test_history_search_matches_titles_and_turn_text(authenticated_client, user, other_user):
    by_title = make_conversation(user, "Kimchi recipe")
    by_text = make_conversation(user, "Cooking", [("user", "How long to ferment kimchi?")])
    make_conversation(user, "Unrelated", [("user", "weather")])
    make_conversation(other_user, "kimchi too", [("user", "kimchi")])
    html = authenticated_client.get("/c/history/", {"q": "KIMCHI"}).content.decode()
    assert set(history_ids(html)) == {str(by_title.pk), str(by_text.pk)}
    assert "No chats found." in authenticated_client.get("/c/history/", {"q": "nothing"}).content.decode()


def test_archived_chats_have_their_own_list(authenticated_client, user):
    active = make_conversation(user, "Active")
    archived = make_conversation(user, "Archived one", archived=True)
    assert history_ids(authenticated_client.get("/c/history/").content.decode()) == [str(active.pk)]
    html = authenticated_client.get("/c/history/", {"archived": "1"}).content.decode()
    assert history_ids(html) == [str(archived.pk)]
    assert "Unarchive" in html


def test_history_pages_follow_a_cursor_without_gaps_or_repeats(authenticated_client, user):
    now = timezone.now()
    Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"chat {i}", updated_at=now - timedelta(minutes=i)) for i in range(120)]
    )
    # Two chats with the same timestamp straddle no gap: the cursor breaks ties on the id.
    Conversation.objects.filter(title__in=["chat 49", "chat 50"]).update(updated_at=now - timedelta(minutes=49))
    seen, cursor, pages = [], "", 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        html = authenticated_client.get("/c/history/", params).content.decode()
        seen += history_ids(html)
        pages += 1
        match = re.search(r'class="history-more link-btn" data-cursor="([^"]+)"', html)
        if not match:
            break
        cursor = match.group(1)
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120


def test_a_bad_cursor_is_a_404_not_a_500(authenticated_client):
    assert authenticated_client.get("/c/history/", {"cursor": "garbage"}).status_code == 404
    assert authenticated_client.get("/c/history/", {"cursor": "2026-01-01T00:00:00+00:00|nope"}).status_code == 404


# --- Query counts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 100, 1000])
def test_history_query_count_is_constant(authenticated_client, user, django_assert_num_queries, count):
    now = timezone.now()
    Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"chat {i}", updated_at=now - timedelta(minutes=i)) for i in range(count)]
    )
    authenticated_client.get("/c/history/")  # warm the session
    # 1 session, 2 user, 3 the pinned chats (first page only), 4 one page of conversations.
    with django_assert_num_queries(4):
        response = authenticated_client.get("/c/history/")
    assert len(history_ids(response.content.decode())) == min(count, 50)


@pytest.mark.parametrize("count", [1, 100, 1000])
def test_chat_page_query_count_is_constant(authenticated_client, user, django_assert_num_queries, count):
    now = timezone.now()
    Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"chat {i}", updated_at=now - timedelta(minutes=i)) for i in range(count)]
    )
    conversation = conversation_with_history(user, count, title="Long chat")
    Feedback.objects.create(turn=conversation.turns.filter(role="assistant").first() or conversation.turns.first(),
                            rating=1)
    # 1 session, 2 user, 3 the conversation, 4 the user's groups, their policies and budget override (the models
    # offered: teams.policy, one query), 5 the latest staff review, 6 the pinned chats, 7 the history page, 8 the
    # projects, 9 the newest turns of the branch shown (one recursive query, with their versions), 10 their feedback,
    # 11 the user's custom instructions (shown in the chat's settings), 12 the user's knowledge bases and which the
    # chat has (the chat's settings), 13 the assistants offered in the sidebar (a chat with no assistant reads none of
    # its own), 14 the knowledge passages the answers shown cite (a chat of one message has no answer to look them up
    # for).
    with django_assert_num_queries(14 if count > 1 else 13):
        response = authenticated_client.get(conversation.get_absolute_url())
    html = response.content.decode()
    assert html.count('class="turn turn-') == min(count, CHAT_PAGE_TURNS)
    assert (f'data-before="{count - CHAT_PAGE_TURNS + 1}"' in html) is (count > CHAT_PAGE_TURNS)
    if count > CHAT_PAGE_TURNS:
        # 1 session, 2 user, 3 the conversation, 4 the next older page of turns, 5 their feedback, 6 the knowledge
        # passages their answers cite.
        with django_assert_num_queries(6):
            authenticated_client.get(f"/c/{conversation.pk}/turns/", {"before": count - CHAT_PAGE_TURNS + 1})


def test_earlier_turns_load_page_by_page(authenticated_client, user, other_user):
    conversation = make_conversation(user, "Long", [("user" if i % 2 else "assistant", f"turn {i}") for i in
                                                    range(1, 191)])
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    # The page opens on the newest CHAT_PAGE_TURNS (40), oldest first; earlier ones come 100 at a time.
    assert html.count('class="turn turn-') == CHAT_PAGE_TURNS == 40
    assert ">turn 151<" in html and "<p>turn 190</p>" in html
    assert ">turn 149<" not in html and "<p>turn 150</p>" not in html
    assert html.index(">turn 151<") < html.index("<p>turn 190</p>")
    assert 'class="turns-earlier link-btn" data-before="151"' in html
    older = authenticated_client.get(f"/c/{conversation.pk}/turns/", {"before": 151}).content.decode()
    assert older.count('class="turn turn-') == 100
    assert ">turn 51<" in older and "<p>turn 150</p>" in older and "<p>turn 50</p>" not in older
    assert 'data-before="51"' in older
    oldest = authenticated_client.get(f"/c/{conversation.pk}/turns/", {"before": 51}).content.decode()
    assert oldest.count('class="turn turn-') == 50
    assert "turns-earlier" not in oldest
    assert authenticated_client.get(f"/c/{conversation.pk}/turns/", {"before": "x"}).status_code == 400
    theirs = make_conversation(other_user, "theirs", [("user", "secret")])
    assert authenticated_client.get(f"/c/{theirs.pk}/turns/", {"before": 5}).status_code == 404


def test_new_chat_page_query_count(authenticated_client, user, django_assert_num_queries):
    make_conversation(user, "one")
    # 1 session, 2 user, 3 the user's groups, their policies and budget override (the models offered: teams.policy,
    # one query), 4 the model last used, 5 the pinned chats, 6 the history page, 7 the projects, 8 the user's custom
    # instructions, 9 the user's knowledge bases (the chat's settings), 10 the assistants offered in the sidebar.
    with django_assert_num_queries(10):
        authenticated_client.get("/")


@pytest.mark.django_db
def test_the_owner_sees_that_staff_reviewed_the_chat(authenticated_client, user, settings):
    from django.test import Client

    from accounts.models import User

    conversation = make_conversation(user, "Reviewed chat")
    page = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert 'data-testid="review-notice"' not in page

    staff = User.objects.create_superuser("reviewer1", "r@example.com", "x-Strong-passw0rd!")
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").status_code == 200

    page = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert 'data-testid="review-notice"' in page
    assert "reviewed by staff" in page and "reviewer1" not in page
    settings.CHAT_SHOW_REVIEWER = True
    assert "reviewed by reviewer1" in authenticated_client.get(conversation.get_absolute_url()).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?before=", "?before=abc", "?before=1.5", "?before=²", "?before=99999999999"])
def test_earlier_turns_need_a_whole_number_position(authenticated_client, user, query):
    conversation = make_conversation(user, "Chat")
    response = authenticated_client.get(f"/c/{conversation.pk}/turns/{query}")
    assert response.status_code == 400


def test_the_turns_fragment_without_a_position_is_the_newest_page_of_the_branch_shown(authenticated_client, user):
    conversation = make_conversation(user, "Chat", [("user", "first"), ("assistant", "one")])
    html = authenticated_client.get(f"/c/{conversation.pk}/turns/").content.decode()
    assert html.count('class="turn turn-') == 2 and "turns-earlier" not in html


def test_tool_calls_and_results_show_readably(authenticated_client, user):
    """A chat an integration ran with tools: the call (name, arguments) and the result, folded, escaped."""
    conversation = Conversation.objects.create(owner=user, title="Weather")
    add_turns(conversation, ("user", "Weather in Paris?"))
    call = {"name": "get_weather", "arguments": '{"city": "<b>Paris</b>"}'}
    add_turns(conversation, ("assistant", ""), tool_calls=[{"id": "call_1", "type": "function", "function": call}])
    add_turns(conversation, ("tool", "18 degrees <script>x</script>"), tool_call_id="call_1")
    add_turns(conversation, ("assistant", "It is 18 degrees."))
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert "Called the tool <code>get_weather</code>" in html
    assert "{&quot;city&quot;: &quot;&lt;b&gt;Paris&lt;/b&gt;&quot;}" in html
    assert "Tool result <code>call_1</code>" in html and "18 degrees &lt;script&gt;" in html
    assert "<script>x</script>" not in html
    tool_turn = html[html.index('data-role="tool"'):]
    assert 'data-action="regenerate"' not in tool_turn[: tool_turn.index("</article>")]
