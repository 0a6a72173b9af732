"""The Redis cache shares one connection pool across threads (ASGI runs each request's sync work in a new one)."""

import os
import threading

import pytest
from django.core.cache import caches
from django_redis import get_redis_connection

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


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
    yield
    caches["shared"].clear()


def test_threads_share_one_pool(redis_cache):
    pools = []

    def use_cache(i):
        cache = caches["shared"]
        cache.set(f"k{i}", i)
        assert cache.get(f"k{i}") == i
        pools.append(get_redis_connection("shared").connection_pool)  # kept alive: ids stay unique

    threads = [threading.Thread(target=use_cache, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pools) == 10
    assert len({id(pool) for pool in pools}) == 1
