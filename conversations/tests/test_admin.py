"""The review panel: reviewers read and search every chat and change nothing; each visit is logged."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations.models import Conversation, Feedback, ReviewLog, Turn
from conversations.tests.admin_support import XSS_PAYLOAD, add_exchange, make_conversation, make_reviewer

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:conversations_conversation_changelist"


def change_url(conversation):
    return reverse("admin:conversations_conversation_change", args=[conversation.pk])


@pytest.fixture
def reviewer(make_user):
    return make_reviewer(make_user)


@pytest.fixture
def reviewer_client(reviewer):
    client = Client()
    client.force_login(reviewer)
    return client


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def superuser_client(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def chats(user, other_user):
    """Three conversations; the word 'zebracorn' occurs only inside two turns of the second one."""
    first = make_conversation(user, "Cooking pasta", exchanges=2)
    second = make_conversation(other_user, "Weekend plans")
    add_exchange(second, "tell me about the zebracorn", "A zebracorn is imaginary.", rating=-1, comment="meh")
    third = make_conversation(user, "Taxes", exchanges=1)
    add_exchange(third, "why?", "", status=Turn.Status.FAILED, error="The model is unavailable.")
    return first, second, third


def test_migration_creates_view_only_reviewers_group():
    group = Group.objects.get(name="Reviewers")
    assert sorted(group.permissions.values_list("content_type__app_label", "codename")) == [
        ("conversations", "view_conversation"),
        ("conversations", "view_feedback"),
        ("conversations", "view_turn"),
    ]


def test_reviewer_finds_conversation_by_a_word_only_inside_a_turn_and_opens_it(reviewer_client, chats):
    first, second, third = chats
    response = reviewer_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3

    response = reviewer_client.get(reverse(CHANGELIST), {"q": "ZEBRACORN"})
    assert response.status_code == 200
    # Two turns of `second` contain the word: still one row (EXISTS, not a join).
    assert list(response.context["cl"].result_list) == [second]
    assert response.context["cl"].result_count == 1

    response = reviewer_client.get(change_url(second))
    assert response.status_code == 200
    html = response.content.decode()
    assert "A zebracorn is imaginary." in html
    # Read-only: no form field to edit and no save button.
    assert 'name="title"' not in html
    assert 'name="_save"' not in html
    assert 'name="turns-0-content"' not in html
    assert "viewsitelink" not in html  # no "view on site": that page is the owner's alone


def test_search_matches_title_and_owner_and_needs_every_word(reviewer_client, chats, other_user):
    first, second, third = chats
    search = lambda q: list(reviewer_client.get(reverse(CHANGELIST), {"q": q}).context["cl"].result_list)  # noqa: E731
    assert search("pasta") == [first]
    assert set(search("alice@example")) == {first, third}
    assert search(other_user.username) == [second]
    assert search("bob zebracorn") == [second]  # owner AND turn text
    assert search("alice zebracorn") == []
    assert search('"answer 2"') == [first]


def test_reviewer_sees_turns_in_order_with_status_tokens_error_and_feedback(reviewer_client, chats):
    first, second, third = chats
    html = reviewer_client.get(change_url(second)).content.decode()
    positions = [html.index(text) for text in ["question 1", "answer 1", "tell me about the zebracorn",
                                               "A zebracorn is imaginary."]]
    assert positions == sorted(positions)
    assert "10 + 5" in html  # prompt + completion tokens of an answer
    assert "120 ms" in html
    assert "bad (−1)" in html and "meh" in html

    html = reviewer_client.get(change_url(third)).content.decode()
    assert "The model is unavailable." in html
    assert "Failed" in html


def _write_requests(conversation, turn, feedback):
    conversation_urls = {
        "add": reverse("admin:conversations_conversation_add"),
        "change": change_url(conversation),
        "delete": reverse("admin:conversations_conversation_delete", args=[conversation.pk]),
    }
    requests = []
    for name, obj in [("conversation", conversation), ("turn", turn), ("feedback", feedback)]:
        add = reverse(f"admin:conversations_{name}_add")
        change = reverse(f"admin:conversations_{name}_change", args=[obj.pk])
        delete = reverse(f"admin:conversations_{name}_delete", args=[obj.pk])
        requests += [("get", add, {}), ("post", add, {}), ("post", change, {"title": "hacked", "content": "hacked"}),
                     ("get", delete, {}), ("post", delete, {"post": "yes"})]
    assert conversation_urls["change"] in {url for _, url, _ in requests}
    for action in ["delete_selected", "export_json", "export_csv", "no_such_action"]:
        requests.append(("post", reverse(CHANGELIST), {"action": action, "_selected_action": [conversation.pk]}))
    for name, obj in [("turn", turn), ("feedback", feedback)]:
        requests.append(("post", reverse(f"admin:conversations_{name}_changelist"),
                         {"action": "delete_selected", "_selected_action": [obj.pk]}))
    return requests


def test_reviewer_gets_403_on_every_add_change_delete_url_and_action(reviewer_client, chats):
    first, second, third = chats
    turn = second.turns.get(position=4)
    feedback = Feedback.objects.get(turn=turn)
    before = (Conversation.objects.count(), Turn.objects.count(), Feedback.objects.count())

    for method, url, data in _write_requests(second, turn, feedback):
        response = getattr(reviewer_client, method)(url, data)
        assert response.status_code == 403, (method, url, data, response.status_code)

    assert (Conversation.objects.count(), Turn.objects.count(), Feedback.objects.count()) == before
    second.refresh_from_db()
    assert second.title == "Weekend plans"
    assert ReviewLog.objects.count() == 0  # no write request counts as a review


def test_reviewer_has_no_actions_and_no_review_log_or_api_keys(reviewer_client, chats):
    response = reviewer_client.get(reverse(CHANGELIST))
    assert 'name="action"' not in response.content.decode()
    assert reviewer_client.get(reverse("admin:conversations_reviewlog_changelist")).status_code == 403
    assert reviewer_client.get(reverse("admin:accounts_apikey_changelist")).status_code == 403
    index = reviewer_client.get(reverse("admin:index")).content.decode()
    assert "Review logs" not in index
    assert reverse("admin:conversations_turn_changelist") in index


@pytest.mark.parametrize("url_name", ["admin:index", CHANGELIST, "admin_usage"])
def test_normal_user_is_redirected_to_admin_login(client, user, url_name, chats):
    client.force_login(user)
    url = reverse(url_name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert f"next={url}" in response["Location"]


def test_normal_user_is_redirected_from_a_conversation_page_and_nothing_is_logged(client, user, chats):
    client.force_login(user)
    response = client.get(change_url(chats[0]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert ReviewLog.objects.count() == 0


def test_opening_a_conversation_writes_exactly_one_review_log_row(reviewer_client, reviewer, chats):
    first, second, third = chats
    reviewer_client.get(reverse(CHANGELIST))  # titles only: no chat's text
    assert ReviewLog.objects.count() == 0

    assert reviewer_client.get(change_url(second)).status_code == 200
    review = ReviewLog.objects.get()
    assert (review.conversation, review.reviewer) == (second, reviewer)

    # A second visit is a second review; a missing conversation is none.
    reviewer_client.get(change_url(second))
    missing = reverse("admin:conversations_conversation_change", args=["00000000-0000-0000-0000-000000000000"])
    assert reviewer_client.get(missing).status_code == 302
    assert ReviewLog.objects.filter(conversation=second).count() == 2
    assert ReviewLog.objects.count() == 2


def test_review_notice_partial_tells_the_owner_when_not_who(reviewer_client, reviewer, chats, settings):
    first, second, third = chats
    assert render_to_string("conversations/_review_notice.html", {"conversation": second}).strip() == ""

    reviewer.first_name = "<b>Rita</b>"
    reviewer.save()
    reviewer_client.get(change_url(second))
    review = ReviewLog.objects.get()

    html = render_to_string("conversations/_review_notice.html", {"conversation": second})
    assert "reviewed by staff on" in html
    assert f'datetime="{review.created_at.isoformat()}"' in html
    assert "Rita" not in html

    settings.CHAT_SHOW_REVIEWER = True
    html = render_to_string("conversations/_review_notice.html", {"conversation": second})
    assert "reviewed by &lt;b&gt;Rita&lt;/b&gt;" in html
    assert "<b>Rita" not in html
    assert render_to_string("conversations/_review_notice.html", {"conversation": first}).strip() == ""


def test_list_shows_tokens_failures_and_feedback_score(reviewer_client, chats):
    first, second, third = chats
    response = reviewer_client.get(reverse(CHANGELIST))
    rows = {c.pk: c for c in response.context["cl"].result_list}
    assert rows[first.pk].total_tokens == 30
    assert rows[second.pk].total_tokens == 30
    assert (rows[second.pk].feedback_up, rows[second.pk].feedback_down) == (1, 1)
    assert [rows[c.pk].has_failed_answer for c in chats] == [False, False, True]
    html = response.content.decode()
    assert "+0 (1 good, 1 bad)" in html
    assert "+1 (1 good, 0 bad)" in html
    assert html.count('class="review-failed"') == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"failed": "yes"}, {"Taxes"}),
        ({"failed": "no"}, {"Cooking pasta", "Weekend plans", "Archived one"}),
        ({"negative": "yes"}, {"Weekend plans"}),
        ({"negative": "no"}, {"Cooking pasta", "Taxes", "Archived one"}),
        ({"archived__exact": "1"}, {"Archived one"}),
        ({"model": "other-model"}, {"Archived one"}),
    ],
)
def test_list_filters(reviewer_client, chats, user, query, expected):
    archived = make_conversation(user, "Archived one", archived=True)
    Conversation.objects.filter(pk=archived.pk).update(model="other-model")
    response = reviewer_client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    assert {c.title for c in response.context["cl"].result_list} == expected


def test_owner_filter_and_date_hierarchy(reviewer_client, chats, other_user):
    response = reviewer_client.get(reverse(CHANGELIST), {"owner__id__exact": other_user.pk})
    assert [c.title for c in response.context["cl"].result_list] == ["Weekend plans"]
    year = chats[0].created_at.year
    response = reviewer_client.get(reverse(CHANGELIST), {"created_at__year": year})
    assert response.context["cl"].result_count == 3


def _list_queries(client, params=None):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(CHANGELIST), params or {})
    assert response.status_code == 200
    return len(queries), response


# session, user, the user's own and group permissions, the owner filter's users, the count, the page of rows
# (annotated), date hierarchy bounds and days, the model filter's values. No count of every chat beside a filtered
# one (show_full_result_count off); a search runs no date drill-down (two queries less: the search runs twice, its
# count and its page); on PostgreSQL a search asks the index once more whether each word is rare.
LIST_QUERIES = 10
SEARCH_QUERIES = 8 + (connection.vendor == "postgresql")


@pytest.mark.parametrize(("params", "expected"), [
    ({}, LIST_QUERIES), ({"q": "answer", "failed": "no", "negative": "no", "o": "5"}, SEARCH_QUERIES),
])
def test_list_query_count_is_the_same_for_1_and_200_conversations(reviewer_client, user, other_user, params,
                                                                   expected):
    make_conversation(user, "only one", exchanges=2)
    one, response = _list_queries(reviewer_client, params)
    assert response.context["cl"].result_count == 1

    for number in range(199):
        make_conversation(user if number % 2 else other_user, f"chat {number}", exchanges=1 + number % 3)
    many, response = _list_queries(reviewer_client, params)
    assert response.context["cl"].result_count == 200
    assert len(response.context["cl"].result_list) == 50  # a full page is rendered
    assert many == one == expected


@pytest.mark.parametrize("params", [{}, {"o": "-4"}, {"negative": "yes"}])
def test_list_page_reads_no_turns_for_its_columns_with_2_or_50_rows(reviewer_client, user, params):
    """Tokens and feedback come from the chat's stored columns: the page's queries are as many for 2 rows as for
    50, and none of them sums turns or reads feedback (a 5,000-turn chat on the page costs what a short one does;
    sorting by tokens, "o=-4", reads no turn)."""
    for number in range(2):
        add_exchange(make_conversation(user, f"chat {number}", exchanges=2), "q", "a", rating=-1)
    two, response = _list_queries(reviewer_client, params)
    assert len(response.context["cl"].result_list) == 2
    for number in range(2, 60):
        add_exchange(make_conversation(user, f"chat {number}", exchanges=1 + number % 3), "q", "a", rating=-1)
    with CaptureQueriesContext(connection) as captured:
        response = reviewer_client.get(reverse(CHANGELIST), params)
    assert len(response.context["cl"].result_list) == 50
    assert len(captured) == two
    sql = " ".join(query["sql"] for query in captured).upper()
    assert "SUM(" not in sql and "CONVERSATIONS_FEEDBACK" not in sql
    row = response.context["cl"].result_list[0]
    assert (row.total_tokens, row.feedback_up, row.feedback_down) == (15 * row.turn_count // 2, 1, 1)


def test_xss_payload_in_a_turn_is_escaped_everywhere_in_the_admin(superuser_client, user):
    conversation = make_conversation(user, "Payload")
    question, answer = add_exchange(conversation, XSS_PAYLOAD, XSS_PAYLOAD, rating=-1, comment=XSS_PAYLOAD)
    pages = [
        change_url(conversation),
        reverse("admin:conversations_turn_change", args=[answer.pk]),
        reverse("admin:conversations_turn_changelist"),
        reverse("admin:conversations_feedback_change", args=[answer.feedback.pk]),
        reverse("admin:conversations_feedback_changelist"),
    ]
    for url in pages:
        html = superuser_client.get(url).content.decode()
        assert "<script>window.__xss" not in html, url
        assert '<img src="x"' not in html, url
        assert "<b>bold?</b>" not in html, url
    html = superuser_client.get(change_url(conversation)).content.decode()
    assert html.count("&lt;script&gt;window.__xss") >= 2  # question and answer, shown as text


def test_superuser_reads_the_review_log(superuser_client, reviewer_client, reviewer, chats):
    reviewer_client.get(change_url(chats[1]))
    response = superuser_client.get(reverse("admin:conversations_reviewlog_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    html = response.content.decode()
    assert "rita" in html and "Weekend plans" in html
    review = ReviewLog.objects.get()
    assert superuser_client.get(reverse("admin:conversations_reviewlog_change", args=[review.pk])).status_code == 200
    assert superuser_client.post(
        reverse("admin:conversations_reviewlog_change", args=[review.pk]), {"reviewer": ""}
    ).status_code == 403


def test_superuser_cannot_edit_chats_but_can_delete_one_for_a_data_request(superuser_client, chats):
    first, second, third = chats
    assert superuser_client.post(change_url(second), {"title": "edited"}).status_code == 403
    assert superuser_client.get(reverse("admin:conversations_conversation_add")).status_code == 403
    superuser_client.get(change_url(second))  # opens it: one review log row, deleted with the chat

    delete_url = reverse("admin:conversations_conversation_delete", args=[second.pk])
    confirmation = superuser_client.get(delete_url)
    assert confirmation.status_code == 200
    assert not confirmation.context["perms_lacking"]
    response = superuser_client.post(delete_url, {"post": "yes"})
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=second.pk).exists()
    assert not Turn.objects.filter(conversation_id=second.pk).exists()
    assert not ReviewLog.objects.filter(conversation_id=second.pk).exists()
    assert Conversation.objects.count() == 2


def test_superuser_bulk_deletes_with_the_action(superuser_client, chats):
    first, second, third = chats
    response = superuser_client.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [first.pk, third.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert list(Conversation.objects.all()) == [second]


def test_turn_and_feedback_admins_search_across_all_chats(reviewer_client, chats):
    response = reviewer_client.get(reverse("admin:conversations_turn_changelist"), {"q": "zebracorn"})
    assert response.status_code == 200
    assert {turn.content for turn in response.context["cl"].result_list} == {
        "tell me about the zebracorn", "A zebracorn is imaginary.",
    }
    response = reviewer_client.get(reverse("admin:conversations_turn_changelist"), {"status__exact": "failed"})
    assert [turn.error for turn in response.context["cl"].result_list] == ["The model is unavailable."]

    response = reviewer_client.get(reverse("admin:conversations_feedback_changelist"), {"rating__exact": "-1"})
    assert [fb.comment for fb in response.context["cl"].result_list] == ["meh"]
    response = reviewer_client.get(reverse("admin:conversations_feedback_changelist"), {"q": "zebracorn"})
    assert response.context["cl"].result_count == 1


def test_turn_list_query_count_does_not_grow(reviewer_client, user):
    make_conversation(user, "a")
    with CaptureQueriesContext(connection) as few:
        reviewer_client.get(reverse("admin:conversations_turn_changelist"))
    for number in range(30):
        make_conversation(user, f"chat {number}", exchanges=2)
    with CaptureQueriesContext(connection) as many:
        reviewer_client.get(reverse("admin:conversations_turn_changelist"))
    assert len(many) == len(few)


def test_conversation_page_query_count_does_not_grow_with_turns(reviewer_client, user):
    short = make_conversation(user, "short", exchanges=1)
    long = make_conversation(user, "long", exchanges=40)
    reviewer_client.get(change_url(short))  # warms the content-type cache, which the first visit fills
    with CaptureQueriesContext(connection) as few:
        reviewer_client.get(change_url(short))
    with CaptureQueriesContext(connection) as many:
        response = reviewer_client.get(change_url(long))
    assert "answer 40" in response.content.decode()
    assert len(many) == len(few)


@pytest.mark.django_db
def test_owner_sees_the_review_in_the_api_detail_and_not_who(client, api_client, user, settings):
    from accounts.models import User
    from conversations.models import Conversation

    conversation = Conversation.objects.create(owner=user, title="reviewed chat")
    detail_url = f"/api/v1/conversations/{conversation.pk}/"
    assert api_client.get(detail_url).json()["review"] is None

    staff = User.objects.create_superuser("staffer", "staff@example.com", "x-Strong-passw0rd!")
    client.force_login(staff)
    assert client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").status_code == 200

    review = api_client.get(detail_url).json()["review"]
    assert review["reviewed_at"]
    assert review["reviewer"] is None
    settings.CHAT_SHOW_REVIEWER = True
    assert api_client.get(detail_url).json()["review"]["reviewer"] == "staffer"


def test_every_admin_page_that_shows_chat_text_logs_a_review(reviewer_client, reviewer, chats):
    """A turn's page, a feedback's page, and the turn and feedback lists (whose rows show text, e.g. a search
    hit) each log a review of the chats they show, so the owner is told."""
    from conversations.models import Feedback, Turn

    first, second, third = chats
    turn = Turn.objects.filter(conversation=first).first()
    assert reviewer_client.get(reverse("admin:conversations_turn_change", args=[turn.pk])).status_code == 200
    assert list(ReviewLog.objects.values_list("conversation_id", flat=True)) == [first.pk]

    ReviewLog.objects.all().delete()
    hit = Turn.objects.filter(conversation=second, role="user").first()
    word = hit.content.split()[0]
    listed = reviewer_client.get(reverse("admin:conversations_turn_changelist"), {"q": word})
    assert listed.status_code == 200
    shown = {row.conversation_id for row in listed.context["cl"].result_list}
    assert second.pk in shown
    assert set(ReviewLog.objects.values_list("conversation_id", flat=True)) == shown

    feedback = Feedback.objects.select_related("turn").first()
    assert feedback is not None, "the chats fixture rates some answers"
    ReviewLog.objects.all().delete()
    url = reverse("admin:conversations_feedback_change", args=[feedback.pk])
    assert reviewer_client.get(url).status_code == 200
    assert list(ReviewLog.objects.values_list("conversation_id", flat=True)) == [feedback.turn.conversation_id]


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_sees_every_version_of_every_branch(reviewer_client, user, fake_upstream):
    from conversations import answering
    from conversations.services import conversation_create

    conversation = conversation_create(owner=user, title="forked")
    fake_upstream.behaviour.reply = "the first answer"
    first = answering.answer(conversation=conversation, user=user, content="the first question")
    fake_upstream.behaviour.reply = "the regenerated answer"
    answering.answer(conversation=conversation, user=user, regenerate=True)
    fake_upstream.behaviour.reply = "an answer on the edited branch"
    answering.answer(conversation=conversation, user=user, content="the edited question", turn_id=first.user_turn.pk)

    page = reviewer_client.get(change_url(conversation)).content.decode()
    for text in ("the first question", "the first answer", "the regenerated answer", "the edited question",
                 "an answer on the edited branch"):
        assert text in page, text
    assert f"#{first.user_turn.pk}" in page  # the versions say what they follow
