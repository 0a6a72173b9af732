"""The Redis cache shares one connection pool across threads (ASGI runs each request's sync work in a new one)."""

import os
import threading
import time

import pytest
from django.core.cache import caches
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
THREADS = 10


@pytest.fixture
def redis_cache(settings):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI starts it; start redis-server locally)")
    settings.CACHES = {
        **settings.CACHES,
        "shared": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "t"},
    }
    # Start with no pool for this URL in the process, so the first connections below really race to make it.
    stale = ConnectionFactory._pools.pop(REDIS_URL, None)
    if stale is not None:
        stale.disconnect()
    yield
    caches["shared"].delete_many([f"k{i}" for i in range(THREADS)])  # only its keys: other tests share this db


def test_threads_share_one_pool(redis_cache, monkeypatch):
    # Making a pool takes microseconds, so a race on the first one shows only on a loaded machine; a slower pool
    # constructor shows it every time.
    make_pool = ConnectionFactory.get_connection_pool

    def slow_make_pool(self, params):
        time.sleep(0.02)
        return make_pool(self, params)

    monkeypatch.setattr(ConnectionFactory, "get_connection_pool", slow_make_pool)
    pools = []
    start = threading.Barrier(THREADS)

    def use_cache(i):
        cache = caches["shared"]
        start.wait()  # all ask for their first connection together
        cache.set(f"k{i}", i)
        assert cache.get(f"k{i}") == i
        pools.append(get_redis_connection("shared").connection_pool)  # kept alive: ids stay unique

    threads = [threading.Thread(target=use_cache, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pools) == THREADS
    assert len({id(pool) for pool in pools}) == 1
