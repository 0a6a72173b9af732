"""Querysets built once and cloned by each use, one per thread.

Building a queryset with subqueries and joins (resolving its expressions) can cost more CPU than running it, so a hot
path keeps one and clones it, as a view's `queryset` is cloned by `get_queryset`. A clone still shares its subqueries'
inner `Query` objects, and compiling one adjusts their alias reference counts for the time of the compile: two
threads compiling clones of one queryset at once would adjust the same counts. So each thread keeps its own (ASGI's
thread pools reuse their threads: a few builds per process).
"""

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_thread(build: Callable[[], T]) -> Callable[[], T]:
    """`build()` once per thread; later calls in that thread return the same object (clone it before use)."""
    local = threading.local()

    @functools.wraps(build)
    def get() -> T:
        try:
            return local.value
        except AttributeError:
            local.value = build()
            return local.value

    return get
