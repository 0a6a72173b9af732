"""One Redis connection pool per process, whatever the number of threads asking for it at once.

django-redis keeps its pools in a process-wide dict but fills it with an unguarded check-then-set: two threads that
ask for the first connection together (ASGI runs each request's sync work in a thread of its own) each build a pool,
and one of them is dropped with its sockets. django-redis leaves `get_or_create_connection_pool` to be
reimplemented for that; this one takes a lock around the miss.
"""

import threading
from typing import Any

from django_redis.pool import ConnectionFactory


class SharedPoolConnectionFactory(ConnectionFactory):
    _lock = threading.Lock()

    def get_or_create_connection_pool(self, params: dict[str, Any]):
        key = params["url"]
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = self.get_connection_pool(params)
        return pool
