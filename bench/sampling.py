"""What the server under test uses while a load runs: CPU time, peak memory and chatsite's DB connections."""

from __future__ import annotations

import os
import threading

import psutil
import psycopg


class Monitor(threading.Thread):
    """Polls the server's memory (with its children's) and, given a database, its connections every 100 ms.

    `pg_dsn` is any database on the PostgreSQL server; the connections counted are those to `database`.
    """

    INTERVAL = 0.1

    def __init__(self, pid: int, pg_dsn: str | None = None, database: str = ""):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.pg_dsn = pg_dsn
        self.database = database
        self.halt = threading.Event()
        self.peak_rss = 0
        self.max_connections = self.max_active = self.max_idle_in_transaction = 0
        self.samples = 0
        self.cpu_seconds = 0.0
        self.load_average = os.getloadavg()[0]

    def cpu_time(self) -> float:
        try:
            times = self.process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    def run(self):
        pg = psycopg.connect(self.pg_dsn, autocommit=True) if self.pg_dsn else None
        cpu_at_start = self.cpu_time()
        try:
            while not self.halt.is_set():
                self.sample(pg)
                self.halt.wait(self.INTERVAL)
            self.sample(pg)
            self.cpu_seconds = self.cpu_time() - cpu_at_start
        finally:
            if pg is not None:
                pg.close()

    def sample(self, pg):
        try:
            processes = [self.process, *self.process.children(recursive=True)]
            self.peak_rss = max(self.peak_rss, sum(p.memory_info().rss for p in processes))
        except psutil.NoSuchProcess:
            pass
        if pg is not None:
            total, active, idle_in_transaction = pg.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'active'),"
                " count(*) FILTER (WHERE state LIKE 'idle in transaction%%')"
                " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.database],
            ).fetchone()
            self.max_connections = max(self.max_connections, total)
            self.max_active = max(self.max_active, active)
            self.max_idle_in_transaction = max(self.max_idle_in_transaction, idle_in_transaction)
        self.samples += 1

    def stop(self):
        self.halt.set()
        self.join()
