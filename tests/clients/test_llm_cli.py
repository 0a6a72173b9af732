"""The `llm` CLI (Simon Willison's, 0.36) against a live chatsite: chatsite configured as an OpenAI-compatible model
in extra-openai-models.yaml under a temporary LLM_USER_PATH, run as a real subprocess. `llm -c` continues its last
conversation by resending the whole history: chatsite keeps it as one conversation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conversations.models import Conversation
from conversations.tests.test_api_live import live_asgi, raw_key  # noqa: F401 (fixtures)
from tests.clients.helpers import stored_conversations

pytestmark = pytest.mark.django_db(transaction=True)

LLM = str(Path(sys.executable).with_name("llm"))


@pytest.fixture
def llm_cli(tmp_path, live_asgi, raw_key, fake_upstream):  # noqa: F811
    (tmp_path / "extra-openai-models.yaml").write_text(
        "- model_id: chatsite\n"
        "  model_name: fake-model\n"
        f"  api_base: {live_asgi}/v1\n"
        "  api_key_name: chatsite\n"
    )
    (tmp_path / "keys.json").write_text(json.dumps({"chatsite": raw_key}))
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path)}
    env.pop("OPENAI_API_KEY", None)

    def run(*args: str) -> str:
        done = subprocess.run([LLM, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    return run


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_a_prompt_and_its_continuation_are_one_conversation(llm_cli, user, fake_upstream, stream):
    reply = fake_upstream.behaviour.reply
    options = [] if stream else ["--no-stream"]
    assert llm_cli("-m", "chatsite", *options, "Hi") == reply
    assert llm_cli("-c", *options, "And again?") == reply
    assert llm_cli("-c", *options, "Once more.") == reply
    assert stored_conversations(user) == [[
        ("user", "Hi"), ("assistant", reply), ("user", "And again?"), ("assistant", reply),
        ("user", "Once more."), ("assistant", reply),
    ]]
    # The model saw the whole history, from the stored conversation.
    last = next(r for r in fake_upstream.chat_requests if r.messages[-1]["content"] == "Once more.")
    assert [m["content"] for m in last.messages if m["role"] != "system"] == [
        "Hi", reply, "And again?", reply, "Once more.",
    ]


def test_a_system_prompt_becomes_the_conversations(llm_cli, user, fake_upstream):
    llm_cli("-m", "chatsite", "-s", "Answer in French.", "Hi")
    llm_cli("-c", "-s", "Answer in French.", "Again")
    conversation = Conversation.objects.get(owner=user)
    assert conversation.system_prompt == "Answer in French." and conversation.turns.count() == 4


def test_options_reach_the_model(llm_cli, fake_upstream):
    llm_cli("-m", "chatsite", "-o", "temperature", "0.3", "-o", "max_tokens", "50", "Hi")
    sent = fake_upstream.chat_requests[0].body
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 50
