"""The embedded local model (SmolLM2-135M via llama.cpp's own server process) answers through the one chat service.

The model server is a real process started by the same supervisor `manage.py serve` uses; these tests also
kill it mid-answer and check what the user keeps and that the next message is answered.
"""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conversations import answering, llm, model_server
from conversations.models import Turn
from conversations.services import conversation_create
from tests.servers import free_port


@pytest.mark.local_model
@pytest.mark.django_db(transaction=True)
def test_local_model_answers_through_the_service(settings, user, local_model):
    settings.CHAT_MAX_ANSWER_TOKENS = 12
    conversation = conversation_create(owner=user)

    run = answering.answer(conversation=conversation, user=user, content="What is the capital of France?")

    answer = Turn.objects.get(pk=run.assistant_turn.pk)
    assert answer.status == Turn.Status.COMPLETE, answer.error
    assert answer.content.strip()
    assert answer.model == settings.LOCAL_MODEL_NAME
    # llama.cpp's server reports no usage while streaming: chatsite counts with the model's own tokenizer.
    assert 0 < answer.completion_tokens <= 14
    assert answer.completion_tokens == llm.get_backend().count_tokens(answer.content)
    assert answer.prompt_tokens > 10
    assert answer.usage_approximate is True


@pytest.mark.local_model
@pytest.mark.django_db(transaction=True)
def test_the_embedded_model_honours_sampling_parameters(settings, user, local_model):
    """max_tokens cuts the answer ("length"), a seed repeats it, a stop sequence ends it, json_object and
    json_schema constrain it to JSON: what the compatibility table in docs/api.md says the local backend does."""
    import json

    settings.CHAT_MAX_ANSWER_TOKENS = 200

    def answer(content, **options):
        conversation = conversation_create(owner=user)
        run = answering.answer(conversation=conversation, user=user, content=content, options=options)
        turn = Turn.objects.get(pk=run.assistant_turn.pk)
        assert turn.status == Turn.Status.COMPLETE, turn.error
        return turn

    cut = answer("Tell me a long story about a dragon.", max_completion_tokens=4)
    assert cut.finish_reason == "length" and 0 < cut.completion_tokens <= 5

    first = answer("Name three colours.", temperature=1.5, seed=1234, max_tokens=12)
    again = answer("Name three colours.", temperature=1.5, seed=1234, max_tokens=12)
    assert first.content == again.content

    stopped = answer("Count from 1 to 20, separated by commas.", stop=["5"], temperature=0, max_tokens=40)
    assert "5" not in stopped.content and stopped.finish_reason == "stop"

    as_json = answer("Give a JSON object with a key 'name'.", response_format={"type": "json_object"})
    assert as_json.finish_reason == "stop", as_json.content
    assert isinstance(json.loads(as_json.content), dict)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    structured = answer("Which city is the capital of France?", response_format={
        "type": "json_schema", "json_schema": {"name": "capital", "schema": schema},
    })
    assert structured.finish_reason == "stop", structured.content
    # llama-cpp-python's schema grammar lets raw control characters into strings (not JSON's strict form).
    assert isinstance(json.loads(structured.content, strict=False)["city"], str)


@pytest.mark.local_model
def test_local_tokenizer_counts_with_the_models_vocabulary(local_model):
    backend = llm.get_backend()
    assert isinstance(backend, llm.LocalServerBackend)
    # SmolLM2's BPE: "Hello world" is two tokens; the 3-bytes-a-token estimate would say four.
    assert backend.count_tokens("Hello world") == 2
    assert llm.approximate_tokens("Hello world") == 4


@pytest.mark.local_model
def test_token_counts_fall_back_to_the_estimate_when_the_model_server_is_away(settings, local_model):
    settings.LOCAL_MODEL_PORT = free_port()  # nothing listens there
    backend = llm.get_backend()
    assert backend.count_tokens("Hello world, again") == llm.approximate_tokens("Hello world, again")
    assert backend.state() == model_server.DOWN


@pytest.mark.local_model
def test_backend_state_is_up_while_the_model_server_runs(local_model):
    assert llm.get_backend().state() == model_server.UP


@pytest.mark.local_model
@pytest.mark.django_db(transaction=True)
def test_local_generation_stops_when_the_client_goes_away(settings, user, local_model):
    settings.CHAT_MAX_ANSWER_TOKENS = 400
    conversation = conversation_create(owner=user)

    async def cancel_after_two_deltas():
        answer = await answering.start(conversation=conversation, user=user, content="Write a long story about a cat.")
        deltas = 0
        async for entry in answer.follow():
            if isinstance(entry.event, answering.AnswerDelta):
                deltas += 1
                if deltas == 2:
                    answering.stop(answer.turn_id)  # what a /v1 client going away does to its answer

    asyncio.run(cancel_after_two_deltas())
    answer = Turn.objects.get(conversation=conversation, position=2)
    assert answer.status == Turn.Status.CANCELLED
    assert answer.content.strip()
    assert answer.completion_tokens < 20  # stopped long before the 400-token limit

    # The model server let go of the abandoned answer: the next one is answered.
    settings.CHAT_MAX_ANSWER_TOKENS = 5
    run = answering.answer(conversation=conversation, user=user, content="Hi")
    assert Turn.objects.get(pk=run.assistant_turn.pk).status == Turn.Status.COMPLETE


@pytest.mark.local_model
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kill_signal", [signal.SIGSEGV, signal.SIGKILL])
def test_a_model_server_crash_mid_answer_fails_that_answer_and_the_next_is_answered(
    settings, user, local_model, kill_signal
):
    settings.CHAT_MAX_ANSWER_TOKENS = 400
    conversation = conversation_create(owner=user)
    pid = local_model.process.pid
    restarts = local_model.restarts

    async def crash_after_two_deltas():
        run = await answering.start(conversation=conversation, user=user, content="Write a long story about a cat.")
        deltas = 0
        async for entry in run.follow():
            if isinstance(entry.event, answering.AnswerDelta):
                deltas += 1
                if deltas == 2:
                    os.kill(pid, kill_signal)
        return run

    run = asyncio.run(crash_after_two_deltas())

    question = Turn.objects.get(pk=run.user_turn.pk)
    answer = Turn.objects.get(pk=run.assistant_turn.pk)
    assert question.content == "Write a long story about a cat."
    assert answer.status == Turn.Status.FAILED
    assert answer.error == "The model service stopped in the middle of the answer."
    assert answer.content.strip()  # what was written before the crash is kept

    # The supervisor starts a new model server, and the next message is answered by it.
    deadline = time.monotonic() + 10
    while local_model.restarts == restarts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local_model.restarts == restarts + 1
    assert local_model.wait_until_up(60)
    assert local_model.process.pid != pid
    assert model_server.read_state(local_model.port)["state"] == model_server.UP
    settings.CHAT_MAX_ANSWER_TOKENS = 5
    run = answering.answer(conversation=conversation, user=user, content="Hi")
    assert Turn.objects.get(pk=run.assistant_turn.pk).status == Turn.Status.COMPLETE


# --- The build: nothing compiled for the CPU that built it --------------------------------------------

# Instructions beyond x86-64-v3 (AVX2/FMA/F16C/BMI2): any AVX-512 register or mask, AVX-VNNI, AMX.
BEYOND_BASELINE = re.compile(r"%zmm|%k[1-7]\b|\{%k|vpdpbusd|vpdpwssd|vdpbf16ps|tdpb|ldtilecfg")


def _llama_lib_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None and spec.submodule_search_locations, "llama-cpp-python is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


@pytest.mark.local_model
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the baseline check reads x86-64 machine code")
def test_the_built_library_has_no_instructions_beyond_the_portable_baseline():
    """Disassemble ggml's CPU kernels: a build for "the CPU that built it" on an AVX-512 machine (such as
    this project's CI machines) is full of zmm registers; the portable build has none, whatever the CPU."""
    objdump = shutil.which("objdump")
    assert objdump, "objdump (binutils) is needed for this check"
    libraries = sorted(_llama_lib_dir().glob("libggml-cpu*.so*"))
    assert libraries, "ggml's CPU backend library was not found"
    for library in libraries:
        disassembly = subprocess.run(
            [objdump, "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True, check=True
        ).stdout
        assert "vfmadd" in disassembly  # the AVX2/FMA kernels are there...
        beyond = BEYOND_BASELINE.search(disassembly)
        assert beyond is None, f"{library.name} uses {beyond.group(0)!r}: compiled beyond x86-64-v3"


@pytest.mark.local_model
def test_llama_cpp_reports_the_portable_feature_set():
    """llama.cpp's own system info (read in a child process: native code never loads into the test process)."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    info = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if os.uname().machine == "x86_64":
        assert "AVX2 = 1" in info
    assert "AVX512" not in info
    assert "AMX" not in info

