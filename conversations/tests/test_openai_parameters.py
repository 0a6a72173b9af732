"""/v1/chat/completions parameters through the official `openai` client and a live server: each reaches the
model as given, invalid ones are 400s naming the parameter, and what cannot be honoured is refused."""

import httpx2 as httpx
import openai
import pytest

from conversations.models import Conversation, Turn
from conversations.tests.test_api_live import client, live_asgi, raw_key  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "hi"}]

PARAMETERS = {
    "temperature": 0.3, "top_p": 0.5, "max_tokens": 50, "stop": ["\n\n", "END"], "seed": 7,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"50256": -100}, "user": "end-user-42",
    "response_format": {"type": "json_object"},
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_every_parameter_reaches_the_model_as_given(client, fake_upstream, stream):  # noqa: F811
    response = client.chat.completions.create(model="fake-model", messages=HI, stream=stream, **PARAMETERS)
    if stream:
        list(response)
    sent = fake_upstream.chat_requests[-1].body
    assert {name: sent.get(name) for name in PARAMETERS} == PARAMETERS


def test_max_completion_tokens_is_sent_alone_and_a_cut_answer_says_length(client, fake_upstream):  # noqa: F811
    fake_upstream.behaviour.tokens = 30
    completion = client.chat.completions.create(model="fake-model", messages=HI, max_completion_tokens=3)
    sent = fake_upstream.chat_requests[-1].body
    assert sent["max_completion_tokens"] == 3 and "max_tokens" not in sent  # OpenAI refuses both at once
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content.split()) == 3
    answer = Turn.objects.get(role="assistant")
    assert answer.finish_reason == "length" and answer.completion_tokens == 3

    stream = client.chat.completions.create(model="fake-model", messages=HI, max_tokens=3, stream=True)
    assert [c.choices[0].finish_reason for c in stream if c.choices][-1] == "length"


def test_without_parameters_the_server_default_answer_length_applies(client, fake_upstream, settings):  # noqa: F811
    client.chat.completions.create(model="fake-model", messages=HI)
    assert fake_upstream.chat_requests[-1].body["max_tokens"] == settings.CHAT_MAX_ANSWER_TOKENS


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_limit_above_the_sites_is_capped_and_a_cut_answer_says_length(
    client, fake_upstream, settings, name, stream,  # noqa: F811
):
    """Open WebUI asks 1000 tokens for a title: the answer is capped at CHAT_MAX_ANSWER_TOKENS, not refused."""
    settings.CHAT_MAX_ANSWER_TOKENS = 5
    fake_upstream.behaviour.tokens = 30
    response = client.chat.completions.create(model="fake-model", messages=HI, stream=stream, **{name: 1000})
    if stream:
        chunks = [chunk for chunk in response if chunk.choices]
        finish_reason = chunks[-1].choices[0].finish_reason
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    else:
        finish_reason, text = response.choices[0].finish_reason, response.choices[0].message.content
    assert fake_upstream.chat_requests[-1].body[name] == 5
    assert finish_reason == "length" and len(text.split()) == 5
    assert Turn.objects.get(role="assistant").finish_reason == "length"


def test_a_capped_limit_that_did_not_cut_the_answer_says_stop(client, fake_upstream, settings):  # noqa: F811
    settings.CHAT_MAX_ANSWER_TOKENS = 50
    fake_upstream.behaviour.tokens = 4
    completion = client.chat.completions.create(model="fake-model", messages=HI, max_tokens=1000)
    assert fake_upstream.chat_requests[-1].body["max_tokens"] == 50
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("param", "value", "reason"), [
    ("temperature", 5, "<= 2"),
    ("temperature", "hot", "Expected a number"),
    ("top_p", -0.1, ">= 0"),
    ("n", 0, ">= 1"),
    ("max_tokens", -5, ">= 1"),
    ("max_tokens", 1.5, "Expected an integer"),
    ("stop", ["a", "b", "c", "d", "e"], "1 to 4"),
    ("seed", "7", "Expected an integer"),
    ("presence_penalty", 3, "<= 2"),
    ("logit_bias", {"token": 5}, "Token ids"),
    ("response_format", {"type": "xml"}, "json_schema"),
    ("stream", "yes", "boolean"),
])
def test_invalid_parameters_are_400s_naming_the_parameter(client, fake_upstream, param, value, reason):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI, extra_body={param: value})
    error = caught.value.body
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    assert reason in error["message"] and param in error["message"], error
    assert fake_upstream.chat_requests == [] and not Conversation.objects.exists()


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_tool_round_trip(client, user, fake_upstream, stream):  # noqa: F811
    """The model calls a tool; the client runs it and sends the result; the model answers. Tool calls stream
    back as the upstream sent them, and both turns are stored so the history sent later reproduces them."""
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    response = client.chat.completions.create(
        model="fake-model", messages=messages, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False,
        stream=stream,
    )
    if stream:
        chunks = list(response)
        deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
        assert len(deltas) == 4  # the name first, then the arguments in three pieces: relayed one by one
        call_id = deltas[0][0].id
        name = deltas[0][0].function.name
        arguments = "".join(d[0].function.arguments or "" for d in deltas)
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    else:
        choice = response.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        call = choice.message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert name == "get_weather" and arguments == fake_upstream.behaviour.tool_arguments
    sent = fake_upstream.chat_requests[-1].body
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False

    stored_call = Turn.objects.get(role="assistant")
    assert stored_call.finish_reason == "tool_calls" and stored_call.content == ""
    assert stored_call.tool_calls == [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    ]

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}},
        ]},
        {"role": "tool", "tool_call_id": call_id, "content": "18 degrees and sunny"},
    ]
    answer = client.chat.completions.create(model="fake-model", messages=messages, tools=TOOLS, stream=stream)
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices) if stream else (
        answer.choices[0].message.content
    )
    assert text == fake_upstream.behaviour.reply
    resent = fake_upstream.chat_requests[-1].messages
    assert resent[-2] == {"role": "assistant", "content": None, "tool_calls": stored_call.tool_calls}
    assert resent[-1] == {"role": "tool", "tool_call_id": call_id, "content": "18 degrees and sunny"}

    conversation = Conversation.objects.get(owner=user)  # the resent history continued the same chat
    assert list(conversation.turns.order_by("position").values_list("role", flat=True)) == [
        "user", "assistant", "tool", "assistant",
    ]


def test_tool_messages_are_checked(client, fake_upstream):  # noqa: F811
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    cases = [
        [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_1", "content": "r"}],
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [call]},
         {"role": "tool", "tool_call_id": "call_2", "content": "r"}],
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [call]},
         {"role": "tool", "content": "r"}],
        [{"role": "user", "content": None}],
    ]
    for messages in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="fake-model", messages=messages)
        assert caught.value.body["param"].startswith("messages"), caught.value.body
    assert fake_upstream.chat_requests == []


@pytest.mark.parametrize(("param", "value", "reason"), [
    ("n", 2, "n must be 1"),
    ("logprobs", True, "log probabilities"),
    ("top_logprobs", 3, "log probabilities"),
    ("audio", {"voice": "alloy", "format": "wav"}, "Audio"),
    ("functions", [{"name": "f"}], "use 'tools'"),
    ("temperatur", 0.5, "Unrecognized request argument supplied: temperatur"),
])
def test_what_cannot_be_honoured_is_refused_not_ignored(client, fake_upstream, param, value, reason):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI, extra_body={param: value})
    assert caught.value.body["param"] == param and reason in caught.value.body["message"], caught.value.body
    assert fake_upstream.chat_requests == []


def test_an_empty_message_list_names_messages(client, fake_upstream):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[])
    assert caught.value.body["param"] == "messages", caught.value.body
    assert caught.value.body["message"].startswith("Invalid 'messages': ")


def test_an_invalid_message_names_its_place_in_the_list(client, fake_upstream):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[
            {"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}, {"role": "user", "content": "x"},
        ])
    assert caught.value.body["param"] == "messages[1].role", caught.value.body


def test_the_embedded_model_refuses_tools_clearly(client, fake_upstream, settings):  # noqa: F811
    from conversations import llm

    backend = llm.LocalServerBackend(port=1, model_name="m", n_ctx=2048, timeout=1, max_retries=0)
    assert backend.refused_option({"temperature": 0.2, "seed": 1, "stop": "x"}) is None
    param, reason = backend.refused_option({"temperature": 0.2, "tools": []})
    assert param == "tools" and "cannot call tools" in reason


def test_accept_event_stream_with_stream_false_is_json(live_asgi, raw_key, fake_upstream):  # noqa: F811
    response = httpx.post(
        f"{live_asgi}/v1/chat/completions", json={"model": "fake-model", "messages": HI, "stream": False},
        headers={"Authorization": f"Bearer {raw_key}", "Accept": "text/event-stream"}, timeout=20,
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.json()["object"] == "chat.completion"


def test_a_system_message_in_the_middle_stays_in_its_place(client, fake_upstream):  # noqa: F811
    messages = [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"}, {"role": "developer", "content": "Now answer in French."},
        {"role": "user", "content": "two"},
    ]
    client.chat.completions.create(model="fake-model", messages=messages)
    sent = fake_upstream.chat_requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "system", "user"]
    assert sent[3]["content"] == "Now answer in French."


def test_an_apps_own_metadata_conversation_id_is_its_own(client, fake_upstream):  # noqa: F811
    completion = client.chat.completions.create(
        model="fake-model", messages=HI, metadata={"conversation_id": "my-app-thread-7"}
    )
    assert completion.choices[0].message.content == fake_upstream.behaviour.reply


def test_models_say_their_context_answer_limit_and_capabilities(client, settings):  # noqa: F811
    settings.CHAT_CONTEXT_TOKENS_BY_MODEL = {"fake-model": 32768}
    settings.CHAT_MAX_ANSWER_TOKENS = 700
    settings.CHAT_VISION_MODELS = ["fake-model"]
    listed = [model.to_dict() for model in client.models.list() if model.purpose == "chat"]
    assert listed == [client.models.retrieve("fake-model").to_dict()] == [{
        "id": "fake-model", "object": "model", "created": 0, "owned_by": "chatsite", "purpose": "chat",
        "context_length": 32768,
        "max_output_tokens": 700, "capabilities": {"vision": True, "tools": True},
    }]
    settings.CHAT_VISION_MODELS = []
    assert client.models.retrieve("fake-model").to_dict()["capabilities"]["vision"] is False


def test_models_by_id_and_unknown_paths_are_openai_errors(client, live_asgi, raw_key, settings):  # noqa: F811
    assert client.models.retrieve("fake-model").id == "fake-model"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9")
    assert caught.value.body["code"] == "model_not_found"
    settings.DEBUG = True
    response = httpx.get(f"{live_asgi}/v1/no/such/thing", headers={"Authorization": f"Bearer {raw_key}"})
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_client_resending_its_history_continues_one_conversation(client, user, fake_upstream):  # noqa: F811
    """As `llm chat` and every Chat Completions client do: the whole history on each call. Three calls leave
    one conversation of six turns, not three conversations of 2, 4 and 6."""
    messages = [{"role": "system", "content": "Be brief."}]
    for question in ("one", "two", "three"):
        messages.append({"role": "user", "content": question})
        reply = client.chat.completions.create(model="fake-model", messages=messages).choices[0].message.content
        messages.append({"role": "assistant", "content": reply})

    conversation = Conversation.objects.get(owner=user)
    assert conversation.turn_count == 6 and conversation.system_prompt == "Be brief."
    path = list(conversation.turns.order_by("position").values_list("role", "content"))
    assert path == [(m["role"], m["content"]) for m in messages[1:]]
    assert [m["content"] for m in fake_upstream.chat_requests[-1].messages] == [m["content"] for m in messages[:-1]]


def test_an_edited_history_forks_and_never_corrupts(client, user, fake_upstream):  # noqa: F811
    first = [{"role": "user", "content": "one"}]
    a1 = client.chat.completions.create(model="fake-model", messages=first).choices[0].message.content
    history = [*first, {"role": "assistant", "content": a1}]
    client.chat.completions.create(model="fake-model", messages=[*history, {"role": "user", "content": "two"}])
    conversation = Conversation.objects.get(owner=user)

    # The last question edited: a new branch beside "two" in the same conversation.
    client.chat.completions.create(model="fake-model", messages=[*history, {"role": "user", "content": "TWO"}])
    assert Conversation.objects.filter(owner=user).count() == 1
    twos = conversation.turns.filter(position=3).order_by("id")
    assert [t.content for t in twos] == ["two", "TWO"] and {t.parent_id for t in twos} == {history_turn(conversation)}

    # An earlier answer edited: the stored chat is left as it was, and the call starts a new conversation.
    edited = [*first, {"role": "assistant", "content": "something else"}, {"role": "user", "content": "three"}]
    client.chat.completions.create(model="fake-model", messages=edited)
    assert Conversation.objects.filter(owner=user).count() == 2
    assert conversation.turns.count() == 6
    assert [m["content"] for m in fake_upstream.chat_requests[-1].messages][1:] == [m["content"] for m in edited]


def history_turn(conversation) -> int:
    return conversation.turns.get(position=2).pk


def test_another_keys_history_is_never_continued(client, live_asgi, user, other_user, fake_upstream):  # noqa: F811
    from accounts.models import ApiKey

    first = [{"role": "user", "content": "same words"}]
    reply = client.chat.completions.create(model="fake-model", messages=first).choices[0].message.content
    resent = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "go on"}]
    for owner in (user, other_user):  # the same user's other key, and someone else's key
        other = openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=ApiKey.generate(user=owner, name="x")[1],
                              max_retries=0)
        other.chat.completions.create(model="fake-model", messages=resent)
    assert Conversation.objects.filter(owner=user).count() == 2
    assert Conversation.objects.filter(owner=other_user).count() == 1
    assert Conversation.objects.get(owner=user, turn_count=2).turns.count() == 2


@pytest.mark.parametrize(("status", "error"), [(429, openai.RateLimitError), (500, openai.InternalServerError)])
def test_an_upstream_error_before_the_first_byte_is_an_http_error_when_streaming(
    client, user, fake_upstream, status, error  # noqa: F811
):
    """So that clients retry on the status, as they do with OpenAI (a stream that had begun ends with an error
    event instead: test_api_live.test_upstream_failure_mid_stream_raises_in_the_client)."""
    fake_upstream.behaviour.fail_status = status
    fake_upstream.behaviour.retry_after = "7" if status == 429 else None
    with pytest.raises(error) as caught:
        list(client.chat.completions.create(model="fake-model", messages=HI, stream=True))
    if status == 429:
        assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.body["code"].startswith("upstream")
    answer = Turn.objects.get(role="assistant")  # the message and the failed answer are kept
    assert answer.status == Turn.Status.FAILED and Turn.objects.get(role="user").content == "hi"


def test_tool_arguments_written_out_again_by_the_client_still_continue_the_chat(client, user, fake_upstream):  # noqa: F811
    """LangChain and the AI SDK parse a tool call's arguments and serialize them their own way."""
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    call = client.chat.completions.create(model="fake-model", messages=messages, tools=TOOLS).choices[0]
    call = call.message.tool_calls[0]
    assert call.function.arguments == '{"city": "Paris", "unit": "celsius"}'
    rewritten = {"id": call.id, "type": "function",
                 "function": {"name": call.function.name, "arguments": '{"unit":"celsius","city":"Paris"}'}}
    client.chat.completions.create(model="fake-model", tools=TOOLS, messages=[
        *messages, {"role": "assistant", "content": None, "tool_calls": [rewritten]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"},
    ])
    assert Conversation.objects.filter(owner=user).count() == 1
    assert Conversation.objects.get(owner=user).turns.count() == 4


def test_images_and_files_as_content_parts(client, user, fake_upstream, settings):  # noqa: F811
    import base64

    from conversations.models import Attachment
    from conversations.tests.test_attachments import PNG, pdf_with_text

    settings.CHAT_VISION_MODELS = ["fake-model"]
    png_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    pdf_data = "data:application/pdf;base64," + base64.b64encode(pdf_with_text("Quarterly numbers")).decode()
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Look at these."},
        {"type": "image_url", "image_url": {"url": png_url}},
        {"type": "file", "file": {"file_data": pdf_data, "filename": "report.pdf"}},
    ]}]
    reply = client.chat.completions.create(model="fake-model", messages=messages).choices[0].message.content
    sent = fake_upstream.chat_requests[-1].messages[-1]["content"]
    assert sent[0]["type"] == "text" and "Look at these." in sent[0]["text"] and "Quarterly numbers" in sent[0]["text"]
    assert sent[1] == {"type": "image_url", "image_url": {"url": png_url}}
    assert Attachment.objects.filter(owner=user, turn__isnull=False).count() == 2

    # The history resent with its parts continues the same conversation (the files are in the digest).
    messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": "And now?"}]
    client.chat.completions.create(model="fake-model", messages=messages)
    assert Conversation.objects.filter(owner=user).count() == 1
    assert fake_upstream.chat_requests[-1].messages[1]["content"][1]["image_url"]["url"] == png_url

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert "does not fetch URLs" in caught.value.body["message"]
    settings.CHAT_VISION_MODELS = []
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": [
            {"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": png_url}}]}])
    assert caught.value.body["code"] == "attachment_refused" and "reads text only" in caught.value.body["message"]
