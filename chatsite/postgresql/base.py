"""Django's PostgreSQL backend with one change: how its connection pool tests a connection it lends.

Django builds the psycopg pool with `check=ConnectionPool.check_connection` (CONN_HEALTH_CHECKS) and no way
to pass another check. That check is right for one dead connection and slow for many: psycopg_pool waits
longer after each failed check before it tries the next connection (0, 1, 2, 4 s...), so after a database
restart, a failover or an administrator's pg_terminate_backend, a pool of dead connections outwaits
DB_POOL_TIMEOUT and requests (and the store of an answer being written) fail. Here a failed check tests every
idle connection at once (ConnectionPool.check(): the dead are discarded and replaced in the background), so
the pool's next try gets a live connection or a fresh one. Everything else is Django's backend.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class DatabaseWrapper(base.DatabaseWrapper):
    _pools: dict = {}

    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = {**self.get_connection_params(), "autocommit": True}  # Django sets it later
            # Django's own hook for each new pooled connection (its postgresql/base.py); django-stubs leaves it out.
            configure = self._configure_connection  # type: ignore[attr-defined]
            pool = ConnectionPool(
                kwargs=connect_kwargs, open=False, configure=configure,
                check=self._check_lent_connection, **({} if options is True else options),
            )
            self._pools.setdefault(self.alias, pool)  # the first thread to get here wins
        return self._pools[self.alias]

    def existing_pool(self):
        """The pool if one was made already (reading its state must not make one: metrics, at any moment)."""
        return self._pools.get(self.alias)

    def close_pool(self):
        if self.pool:
            self.pool.close()
            del self._pools[self.alias]

    def _check_lent_connection(self, conn) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            self._pools[self.alias].check()  # one dead connection rarely comes alone
            raise
