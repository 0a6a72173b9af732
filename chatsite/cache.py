"""Django's Redis cache with one connection pool per process instead of one per thread.

Django keeps a cache object per thread, and each made its own pool: under ASGI every request runs its sync
parts in a fresh thread, so every request opened a new Redis connection (bench/ANALYSIS.md). Here the pools
are shared.
"""

import threading
from typing import TYPE_CHECKING, Any

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple[Any, ...], redis.ConnectionPool] = {}
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    # Django's RedisCacheClient's own (private, so django-stubs does not declare them): set in its __init__.
    _servers: list[str]
    _pool_class: type[redis.ConnectionPool]
    _pool_options: dict[str, Any]
    if TYPE_CHECKING:

        def _get_connection_pool_index(self, write: bool) -> int: ...

    def _get_connection_pool(self, write: bool) -> redis.ConnectionPool:
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], self._pool_class, tuple(sorted(self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(self._servers[index], **self._pool_options)
        return pool


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
