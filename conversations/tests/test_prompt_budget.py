"""A system prompt within the model's context: instructions that leave no room for the message are refused before
any model call (the message stored, the answer failed with `system_prompt_too_long`, naming the largest parts);
knowledge passages that do not fit are left out with a line saying so. The real `openai` client over real HTTP,
against the fake upstream."""

import re

import openai
import pytest
from django.test import Client
from django.utils import translation

from conversations import answering, errors, llm
from conversations.models import Conversation, Project, Turn
from conversations.services import conversation_create
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)
from knowledge.models import Citation
from knowledge.tests.support import indexed_base
from personal import services

pytestmark = pytest.mark.django_db(transaction=True)

PASSAGE = re.compile(r'<passage number="(\d+)"')
# Five sections about herons, each a passage of its own (KNOWLEDGE_PASSAGE_CHARS is 1,000), each matching "heron".
HERONS = {
    "herons.md": "\n\n".join(
        f"# Heron fact {number}\n\n" + f"The grey heron number {number} stands still in shallow water. " * 12
        for number in range(1, 6)
    ).encode()
}


@pytest.fixture
def small_context(settings):
    settings.CHAT_CONTEXT_TOKENS = 1_000
    settings.CHAT_MAX_ANSWER_TOKENS = 200
    return settings


def test_an_assistant_whose_instructions_fill_the_context_is_refused_before_any_model_call(
    client, user, fake_upstream, small_context,  # noqa: F811
):
    base = indexed_base(user, HERONS)  # matching passages, none given or stored: the answer is refused
    tutor = services.assistant_create(owner=user, name="Tutor", instructions="Explain it slowly. " * 300,
                                      knowledge_bases=[base.pk])
    fake_upstream.requests.clear()

    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=tutor.model_id, messages=[{"role": "user", "content": "A grey heron?"}])

    error = refused.value.body
    assert error["code"] == "system_prompt_too_long"
    assert re.search(r"The largest: the assistant's instructions \(about \d+ tokens\)", error["message"])
    assert "800 fit" in error["message"]  # the context less the answer's room
    assert fake_upstream.requests == []  # no chat completion, no embeddings
    conversation = Conversation.objects.get(owner=user)
    question, answer = Turn.objects.filter(conversation=conversation).order_by("position")
    assert (question.role, question.content) == ("user", "A grey heron?")  # the message is kept
    assert (answer.status, answer.error_code, answer.error) == (
        Turn.Status.FAILED, "system_prompt_too_long", error["message"])
    assert not Citation.objects.exists()


def test_a_streamed_request_gets_the_same_refusal_before_its_stream_starts(
    client, user, fake_upstream, small_context,  # noqa: F811
):
    tutor = services.assistant_create(owner=user, name="Tutor", instructions="Explain it slowly. " * 300)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=tutor.model_id, messages=[{"role": "user", "content": "Tell me."}], stream=True
        )
    assert refused.value.body["code"] == "system_prompt_too_long"
    assert "the assistant's instructions" in refused.value.body["message"]
    assert fake_upstream.requests == []
    assert Turn.objects.get(role="assistant").error_code == "system_prompt_too_long"


def test_the_refusal_names_the_largest_parts_in_the_users_language(user, fake_upstream, small_context):
    project = Project.objects.create(owner=user, name="Thesis", instructions="Cite the style guide. " * 200)
    services.personalization_update(user=user, about_me="I write a thesis on herons. " * 50)
    conversation = conversation_create(owner=user, project=project)

    with translation.override("ko"), pytest.raises(errors.SystemPromptTooLong) as refused:
        answering.answer(conversation=conversation, user=user, content="Hello")

    answer = Turn.objects.get(conversation=conversation, role="assistant")
    assert answer.status == Turn.Status.FAILED and answer.error_code == errors.SystemPromptTooLong.code
    assert answer.error == refused.value.message
    # The three largest: the project's instructions (~1,490 tokens), the custom instructions (~480), then the chat's
    # own prompt; not the message (~6).
    largest = (
        r"가장 큰 부분: 프로젝트 지침 \(약 \d+ 토큰\), 맞춤 지침 \(약 \d+ 토큰\), "
        r"이 대화의 시스템 프롬프트 \(약 \d+ 토큰\)\.$"
    )
    assert re.search(largest, answer.error)
    assert fake_upstream.chat_requests == []
    assert Turn.objects.filter(conversation=conversation, role="user", content="Hello").exists()
    # The chat's page shows the message, then the failed answer saying why.
    browser = Client()
    browser.force_login(user)
    browser.cookies[small_context.LANGUAGE_COOKIE_NAME] = "ko"
    page = browser.get(conversation.get_absolute_url()).content.decode()
    assert "Hello" in page and answer.error in page


def test_instructions_that_fit_are_answered_as_before(client, user, fake_upstream, small_context):  # noqa: F811
    tutor = services.assistant_create(owner=user, name="Tutor", instructions="Explain it slowly. " * 100)
    completion = client.chat.completions.create(model=tutor.model_id, messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content
    [request] = fake_upstream.chat_requests
    assert request.messages[0]["content"].endswith("Explain it slowly.")


def _system_prompt_given(client, fake_upstream, model: str) -> str:  # noqa: F811
    fake_upstream.requests.clear()
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What do herons do?"}])
    [request] = fake_upstream.chat_requests
    return request.messages[0]["content"]


def test_passages_that_do_not_fit_are_left_out_with_a_notice(client, user, fake_upstream, settings):  # noqa: F811
    base = indexed_base(user, HERONS)
    tutor = services.assistant_create(owner=user, name="Tutor", instructions="Use the notes.",
                                      knowledge_bases=[base.pk])
    settings.CHAT_MAX_ANSWER_TOKENS = 200

    everything = _system_prompt_given(client, fake_upstream, tutor.model_id)
    matched = len(PASSAGE.findall(everything))
    assert matched == 5 and "left out" not in everything

    # Room for about half of them: the best are given, numbered from 1, with a line for the rest.
    settings.CHAT_CONTEXT_TOKENS = 200 + llm.approximate_tokens(everything) * 6 // 10
    trimmed = _system_prompt_given(client, fake_upstream, tutor.model_id)
    given = [int(number) for number in PASSAGE.findall(trimmed)]
    assert 0 < len(given) < matched and given == list(range(1, len(given) + 1))
    assert trimmed.endswith(f"({matched - len(given)} more matching passages were left out to fit the model's "
                            "context.)")
    answer = Turn.objects.filter(role="assistant").latest("pk")
    assert answer.status == Turn.Status.COMPLETE
    assert sorted(Citation.objects.filter(turn=answer).values_list("number", flat=True)) == given
    sent = fake_upstream.chat_requests[-1].messages
    assert sum(llm.approximate_tokens(m["content"]) + llm.MESSAGE_OVERHEAD_TOKENS for m in sent) <= (
        settings.CHAT_CONTEXT_TOKENS - settings.CHAT_MAX_ANSWER_TOKENS)

    # No room for any: the model is told that passages matched and none fit.
    settings.CHAT_CONTEXT_TOKENS = 200 + llm.approximate_tokens(everything.split("<passage")[0]) + 40
    none_fit = _system_prompt_given(client, fake_upstream, tutor.model_id)
    assert PASSAGE.findall(none_fit) == []
    assert none_fit.endswith("none fit in the model's context (5 left out). If the question needs them, say so.")
