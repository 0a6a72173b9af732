"""ASGI entry point (uvicorn chatsite.asgi:application): the streaming views run natively here."""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


class RequestThreads:
    """Single-thread executors lent to requests and reused, instead of a new thread per request.

    Django gives every request its own thread for sync code (asgiref's ThreadSensitiveContext) and
    starts it, then joins it from yet another new thread, per request; starting a thread stalls the event
    loop until the thread runs (what that cost: bench/ANALYSIS.md). A request borrows one of these for its
    whole life, so its sync code still runs on one thread of its own; afterwards the thread waits for the
    next request. Only the event loop's thread touches the pool, so it needs no lock. At most `keep` idle
    threads are kept.
    """

    def __init__(self, keep: int):
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []
        self.created = 0

    def borrow(self) -> ThreadPoolExecutor:
        if self.idle:
            return self.idle.pop()
        self.created += 1
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self.idle) < self.keep:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)


class ChatsiteASGIHandler(ASGIHandler):
    """Django's ASGI handler, with Django's own middleware as configured. Each HTTP request runs in a
    ThreadSensitiveContext (asgiref's documented API) whose thread comes from `RequestThreads`, and the answer
    engine runs its answers on this server's loop.
    """

    def __init__(self):
        super().__init__()
        self.request_threads = RequestThreads(keep=settings.ASGI_IDLE_REQUEST_THREADS)
        self.answer_engine_loop = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        if self.answer_engine_loop is None:
            # Answers run on the server's own loop, beside the requests that follow them.
            from conversations.answering.engine import engine

            self.answer_engine_loop = asyncio.get_running_loop()
            engine.adopt_loop(self.answer_engine_loop)
        executor = self.request_threads.borrow()
        try:
            # Django's own ThreadSensitiveContext inside super().__call__ defers to this outer one.
            async with ThreadSensitiveContext(executor=executor):
                await super().__call__(scope, receive, send)
        finally:
            self.request_threads.give_back(executor)


    async def lifespan(self, receive, send):
        """The server's start and stop: at stop, the connections to model servers are closed while the loop
        still runs (else each is reported unclosed as the process exits)."""
        from conversations import llm

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await llm.close_sessions()
                await send({"type": "lifespan.shutdown.complete"})
                return


django.setup(set_prefix=False)
application = ChatsiteASGIHandler()
