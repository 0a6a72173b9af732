"""Model access on every surface for a user whose group lacks a model: the page's picker, the REST API, /api/chat,
`/v1/models`, `/v1/chat/completions` and `/v1/responses` offer and accept only the group's models, and another model
is the same error as an unknown one."""

import openai
import pytest
from django.test import Client
from django.urls import reverse

from conversations.models import Conversation, Turn
from conversations.services import conversation_create
from conversations.tests.api_helpers import assert_error
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def restricted(user, make_group, two_models):
    """alice's only group allows other-model: not the site's default (fake-model)."""
    make_group("contractors", members=[user], models=["other-model"])
    return user


def post(api, url, data):
    return api.post(url, data, format="json")


def test_the_page_offers_only_the_groups_models(restricted):
    page = Client()  # (`client` here is the openai one)
    page.force_login(restricted)
    response = page.get(reverse("conversations:home"))
    assert response.context["model_choices"] == ["other-model"]
    assert response.context["default_model"] == "other-model"
    assert 'value="fake-model"' not in response.content.decode() and ">fake-model<" not in response.content.decode()


def test_the_page_keeps_every_model_for_a_user_in_no_group(make_user, two_models):
    page = Client()
    page.force_login(make_user("carol"))
    response = page.get(reverse("conversations:home"))
    assert response.context["model_choices"] == ["fake-model", "other-model"]


def test_rest_refuses_a_model_outside_the_group_as_an_unknown_one(api_client, restricted):
    lacking = assert_error(post(api_client, "/api/v1/conversations/", {"model": "fake-model"}), 400)
    unknown = assert_error(post(api_client, "/api/v1/conversations/", {"model": "no-such-model"}), 400)
    assert lacking["fields"]["model"] == [m.replace("no-such-model", "fake-model") for m in unknown["fields"]["model"]]
    assert lacking["fields"]["model"] == ["Unknown model. Available: other-model."]
    assert post(api_client, "/api/v1/conversations/", {"model": "other-model"}).status_code == 201
    conversation = conversation_create(owner=restricted)
    response = api_client.patch(f"/api/v1/conversations/{conversation.pk}/", {"model": "fake-model"}, format="json")
    assert assert_error(response, 400)["fields"]["model"] == ["Unknown model. Available: other-model."]


def test_a_turn_in_a_chat_set_to_a_model_no_longer_allowed_is_refused_before_anything_is_stored(
    api_client, restricted, fake_upstream
):
    conversation = conversation_create(owner=restricted, model="fake-model")  # chosen before the group said no
    response = post(api_client, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"})
    error = assert_error(response, 404, "model_not_found")
    assert error["message"] == "The model 'fake-model' does not exist here. See GET /v1/models."
    assert not conversation.turns.exists() and fake_upstream.chat_requests == []


def test_a_turn_without_a_model_is_answered_by_the_groups_model(api_client, restricted, fake_upstream):
    conversation = conversation_create(owner=restricted)
    response = post(api_client, f"/api/v1/conversations/{conversation.pk}/turns/", {"content": "hi"})
    assert response.status_code == 201, response.content
    assert response.json()["assistant_turn"]["model"] == "other-model"
    assert fake_upstream.chat_requests[-1].body["model"] == "other-model"


def test_api_chat_answers_with_the_groups_model_never_the_sites_default(api_client, restricted, fake_upstream):
    response = post(api_client, "/api/chat", {"messages": [{"role": "user", "content": "hello"}]})
    assert response.status_code == 200, response.content
    assert Turn.objects.get(role=Turn.Role.ASSISTANT).model == "other-model"
    assert [request.body["model"] for request in fake_upstream.chat_requests] == ["other-model"]


def test_api_chat_is_refused_when_the_group_allows_no_model_the_site_offers(api_client, user, make_group, two_models,
                                                                            fake_upstream):
    make_group("nothing-here", members=[user], models=["retired-model"])
    response = post(api_client, "/api/chat", {"messages": [{"role": "user", "content": "hello"}]})
    assert_error(response, 404, "model_not_found")
    assert not Conversation.objects.exists() and fake_upstream.chat_requests == []


def test_v1_models_lists_only_the_groups_models(client, restricted):  # noqa: F811
    assert [model.id for model in client.models.list()] == ["other-model"]
    assert client.models.retrieve("other-model").id == "other-model"
    with pytest.raises(openai.NotFoundError) as lacking:
        client.models.retrieve("fake-model")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.models.retrieve("no-such-model")
    assert lacking.value.body["code"] == unknown.value.body["code"] == "model_not_found"


def test_embedding_models_are_offered_and_accepted_only_as_the_group_allows(client, user, make_group, settings,  # noqa: F811
                                                                           fake_upstream):
    settings.EMBEDDING_MODELS = ["text-embedding-3-small", "text-embedding-3-large"]
    make_group("search-team", members=[user], models=["fake-model", "text-embedding-3-large"])
    assert [model.id for model in client.models.list()] == ["fake-model", "text-embedding-3-large"]
    assert client.embeddings.create(model="text-embedding-3-large", input="allowed").model == "text-embedding-3-large"
    with pytest.raises(openai.NotFoundError) as lacking:
        client.embeddings.create(model="text-embedding-3-small", input="not allowed")
    with pytest.raises(openai.NotFoundError) as unlisted:
        client.models.retrieve("text-embedding-3-small")
    assert lacking.value.body["code"] == unlisted.value.body["code"] == "model_not_found"
    assert "text-embedding-3-small" not in lacking.value.body["message"].split("offered: ")[1]
    assert [request.body["model"] for request in fake_upstream.embedding_requests] == ["text-embedding-3-large"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_chat_completions_refuse_a_model_outside_the_group_as_an_unknown_one(
    client, restricted, fake_upstream, stream  # noqa: F811
):
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as lacking:
        client.chat.completions.create(model="fake-model", messages=messages, stream=stream)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=messages, stream=stream)
    same = {**unknown.value.body, "message": unknown.value.body["message"].replace("no-such-model", "fake-model"),
            "request_id": lacking.value.body["request_id"]}
    assert lacking.value.body == same and lacking.value.status_code == unknown.value.status_code == 404
    assert fake_upstream.chat_requests == [] and not Conversation.objects.exists()
    answer = client.chat.completions.create(model="other-model", messages=messages)
    assert answer.model == "other-model"


def test_responses_refuse_a_model_outside_the_group_as_an_unknown_one(client, restricted, fake_upstream):  # noqa: F811
    with pytest.raises(openai.NotFoundError) as lacking:
        client.responses.create(model="fake-model", input="hi")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="no-such-model", input="hi")
    assert lacking.value.body["code"] == unknown.value.body["code"] == "model_not_found"
    assert fake_upstream.chat_requests == [] and not Conversation.objects.exists()
    assert client.responses.create(model="other-model", input="hi").model == "other-model"
