"""chatsite.prebuilt.per_thread: built once per thread, never shared between threads."""

import threading

from chatsite.prebuilt import per_thread


def test_each_thread_builds_once_and_keeps_its_own():
    builds = []

    @per_thread
    def built() -> object:
        builds.append(threading.get_ident())
        return object()

    mine = built()
    assert built() is mine and len(builds) == 1
    theirs = []
    threads = [threading.Thread(target=lambda: theirs.append((built(), built()))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(first is second for first, second in theirs)  # each thread: one build, reused
    assert len({id(first) for first, _ in theirs} | {id(mine)}) == 5  # and none shared
    assert len(builds) == 5
