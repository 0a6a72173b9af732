"""Knowledge bases: indexing speed (pages per second, a 300-page PDF through the real indexing task) and passage
search time at 10,000 and 100,000 passages (full text, and hybrid ranking's vector part), on the database
DATABASE_URL names (SQLite or PostgreSQL).

The corpus is synthetic (words drawn with a Zipf-like frequency from a fixed vocabulary, seeded): the numbers
measure the index, not a language. Run with chatsite's environment on a database made for it (it migrates it):
`DATABASE_URL=sqlite:///var/bench-knowledge.sqlite3 python -m bench.knowledge --out bench/out/knowledge-sqlite.json`.
"""

import argparse
import io
import itertools
import json
import os
import random
import statistics
import time

PDF_PAGES = 300
PAGE_CHARS = 2_000
SIZES = (10_000, 100_000)
QUERIES = 50
INSERT_BATCH = 2_000
# Hybrid ranking's vector part: all-MiniLM-L6-v2's size (bench/knowledge_quality.py uses that model).
VECTOR_DIMENSIONS = 384
VECTOR_MODEL = "bench-random-384"
VECTOR_QUERIES = 10


def vocabulary(seed: int = 7) -> tuple[list[str], list[float]]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(30_000)})
    # Zipf: a few common words, many rare ones (cumulative, so that each draw is a bisection).
    return words, list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))


def text_of(rng: random.Random, words: list[str], weights: list[float], chars: int) -> str:
    out: list[str] = []
    length = 0
    while length < chars:
        sentence = " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(8, 20))).capitalize() + "."
        out.append(sentence)
        length += len(sentence) + 1
    return " ".join(out)[:chars]


def pdf_bytes(pages: list[str]) -> bytes:
    """A real PDF with one text line per 100 characters (Helvetica)."""
    import pypdf
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = pypdf.PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }))
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        lines = [text[i:i + 100] for i in range(0, len(text), 100)]
        body = "BT /F1 9 Tf 40 760 Td 11 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
        stream = DecodedStreamObject()
        stream.set_data(body.encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def indexing_speed(owner, rng, words, weights) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.indexing import index_document
    from knowledge.models import Document
    from knowledge.services import document_upload, knowledge_base_create

    base = knowledge_base_create(owner=owner, name="indexing speed")
    pages = [text_of(rng, words, weights, PAGE_CHARS) for _ in range(PDF_PAGES)]
    content = pdf_bytes(pages)
    started = time.perf_counter()
    document = document_upload(base=base, upload=SimpleUploadedFile("bench.pdf", content))
    upload_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index_document.call(document.pk)  # the task's own function, in this process (the worker runs the same)
    seconds = time.perf_counter() - started
    document = Document.objects.get(pk=document.pk)
    assert document.status == Document.Status.READY, document.error
    return {"pages": PDF_PAGES, "pdf_bytes": len(content), "passages": document.passage_count,
            "upload_check_seconds": upload_seconds, "index_seconds": seconds, "pages_per_second": PDF_PAGES / seconds}


def query_times(owner, rng, words, weights) -> list[dict]:
    from django.db import connection, transaction

    from knowledge.models import Document, Passage
    from knowledge.search import passages_search
    from knowledge.services import knowledge_base_create

    base = knowledge_base_create(owner=owner, name="query time")
    document = Document.objects.create(base=base, name="synthetic", content_type="text/plain", size=0, sha256="",
                                       status=Document.Status.READY)
    results = []
    have = 0
    for size in SIZES:
        started = time.perf_counter()
        while have < size:
            count = min(INSERT_BATCH, size - have)
            with transaction.atomic():
                Passage.objects.bulk_create(
                    Passage(document=document, ordinal=have + i, text=text_of(rng, words, weights, 1_000),
                            start=0, end=1_000)
                    for i in range(count)
                )
            have += count
        insert_seconds = time.perf_counter() - started
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE knowledge_passage")
        samples = []
        for _ in range(QUERIES):
            # A question of six words: two common, four from the middle of the vocabulary.
            question = " ".join(rng.choices(words[:200], k=2) + rng.choices(words[200:5_000], k=4))
            started = time.perf_counter()
            found = passages_search(owner_ids=[owner.pk], base_ids=[base.pk], query=question, limit=5)
            samples.append(time.perf_counter() - started)
            assert found, question
        samples.sort()
        results.append({
            "passages": size, "insert_seconds": insert_seconds, "queries": QUERIES,
            "median_ms": statistics.median(samples) * 1000, "p95_ms": samples[int(0.95 * len(samples)) - 1] * 1000,
            "vector_search": vector_search_times(owner, base, document),
        })
    return results


def vector_search_times(owner, base, document) -> dict:
    """Hybrid ranking's own part of a search (knowledge.vectors): reading the base's vectors and the exact nearest
    ones, over random unit vectors of VECTOR_DIMENSIONS stored for every passage (the question's embedding call is
    the embeddings server's time, not measured here)."""
    import numpy as np
    from django.conf import settings
    from django.db import transaction

    from knowledge import vectors
    from knowledge.models import Passage, PassageVector

    rng = np.random.default_rng(5)
    settings.KNOWLEDGE_EMBEDDINGS_MODEL = VECTOR_MODEL
    try:
        pending = list(Passage.objects.filter(document=document, vector__isnull=True).values_list("pk", flat=True))
        for first in range(0, len(pending), INSERT_BATCH):
            batch = pending[first:first + INSERT_BATCH]
            matrix = rng.standard_normal((len(batch), VECTOR_DIMENSIONS)).astype(vectors.VECTOR_DTYPE)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            with transaction.atomic():
                PassageVector.objects.bulk_create(
                    PassageVector(passage_id=pk, model=VECTOR_MODEL, vector=row.tobytes())
                    for pk, row in zip(batch, matrix, strict=True)
                )
        read, ranked = [], []
        for _ in range(VECTOR_QUERIES):
            question = rng.standard_normal(VECTOR_DIMENSIONS).astype(vectors.VECTOR_DTYPE)
            started = time.perf_counter()
            ids, blobs = vectors.stored_vectors(owner_ids=[owner.pk], base_ids=[base.pk])
            read.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert len(vectors.nearest(ids, blobs, question, 20)) == 20
            ranked.append(time.perf_counter() - started)
    finally:
        settings.KNOWLEDGE_EMBEDDINGS_MODEL = ""
    return {"dimensions": VECTOR_DIMENSIONS, "queries": VECTOR_QUERIES,
            "read_median_ms": statistics.median(read) * 1000, "nearest_median_ms": statistics.median(ranked) * 1000}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
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
    settings.CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES = 10**12
    settings.KNOWLEDGE_DOCUMENT_MAX_BYTES = 10**9
    settings.KNOWLEDGE_EMBEDDINGS_MODEL = ""  # full text: the vector part is timed on its own (vector_search_times)
    call_command("migrate", verbosity=0)
    owner = User.objects.create(username=f"bench-knowledge-{int(time.time())}", password=make_password(None))
    words, weights = vocabulary()
    rng = random.Random(11)
    result = {"database": connection.vendor, "indexing": indexing_speed(owner, rng, words, weights),
              "queries": query_times(owner, rng, words, weights)}
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
