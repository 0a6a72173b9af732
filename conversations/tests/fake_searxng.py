"""A fake SearXNG for tests: its JSON search API and the result pages it points to, on 127.0.0.1 (a thread
with its own event loop, so synchronous tests and asyncio.run callers can both use it)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

OTTERS_PAGE = """<html><head><title>Otters</title><style>p { color: red }</style>
<script>alert("never read")</script></head><body><nav>Menu Home About</nav>
<h1>Sea otters</h1><p>Sea otters hold hands while they sleep &amp; drift.</p><footer>Copyright</footer></body></html>"""
BIG_CHUNK = b"otter " * (1024 * 1024 // 6)


class FakeSearXNG:
    def __init__(self) -> None:
        self.port = 0
        self.queries: list[str] = []
        self.page_requests: list[str] = []
        # (path, title) per result, in order: a path starting with "/" is on this server, anything else as given.
        self.results: list[tuple[str, str]] = [("/pages/otters", "All about otters")]
        self.redirect_to = ""  # where /pages/redirect sends the reader

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def search(self, request: web.Request) -> web.Response:
        self.queries.append(request.query.get("q", ""))
        if request.query.get("format") != "json":
            return web.Response(status=403, text="format not allowed")
        results = [{"title": title, "url": self.base_url + path if path.startswith("/") else path,
                    "content": f"Snippet for {title}."} for path, title in self.results]
        return web.json_response({"query": request.query["q"], "results": results})

    async def page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.page_requests.append(name)
        if name == "otters":
            return web.Response(text=OTTERS_PAGE, content_type="text/html")
        if name == "redirect":
            raise web.HTTPFound(self.redirect_to)
        if name == "slow":
            await asyncio.sleep(30)
        if name == "huge":  # 50 MB if read to the end
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            for _ in range(50):
                await response.write(BIG_CHUNK)
            await response.write_eof()
            return response
        return web.Response(status=404)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/search", self.search)
        app.router.add_get("/pages/{name}", self.page)
        return app

    def start_in_thread(self) -> FakeSearXNG:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.1)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.port = self._runner.addresses[0][1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-searxng", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake SearXNG did not start")
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
