"""The chat page as production serves it: the real settings with DEBUG off, `collectstatic` through the manifest
storage (chatsite/storage.py), ServeStatic serving the collected files. The page's scripts are ES modules that
import each other; every one the browser loads must be a hashed, immutable file (so a page never mixes two
deploys' modules), and the page must work."""

import re
import subprocess
import sys

import pytest

from tests.browser.helpers import send_message, sign_up
from tests.servers import ROOT, Server, upstream_env

HASHED_SCRIPT = re.compile(r"/static/.+\.[0-9a-f]{12}\.js$")


@pytest.fixture
def production_server(_fake_upstream_server, tmp_path):
    server = Server(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        settings_module="chatsite.settings",
        env={
            **upstream_env(_fake_upstream_server.base_url),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "STATIC_ROOT": str(tmp_path / "static"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "SERVESTATIC_USE_FINDERS": "0",  # only what collectstatic wrote
            "SESSION_COOKIE_SECURE": "0",  # plain HTTP on 127.0.0.1
            "CSRF_COOKIE_SECURE": "0",
        },
    )
    for command in (["collectstatic", "--noinput"], ["migrate", "--noinput"]):
        subprocess.run([sys.executable, "manage.py", *command, "-v", "0"], cwd=ROOT, env=server.env, check=True)
    yield server.start()
    server.stop()


def test_the_chat_page_loads_hashed_modules_and_works_with_debug_off(browser, production_server, upstream):
    context = browser.new_context(base_url=production_server.base_url)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors, scripts = [], {}
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda response: response.request.resource_type == "script"
                and scripts.setdefault(response.url, response))
        # Math (KaTeX, imported by the modules) and a diagram (Mermaid, in its sandboxed frame, by nonce).
        upstream.behaviour.reply = "So $x^2$ and:\n\n```mermaid\ngraph LR\n  A --> B\n```\n"
        sign_up(page)
        send_message(page, "Hello from production")
        page.wait_for_selector(".turn-assistant[data-status=complete] .katex")
        page.wait_for_selector(".turn-assistant[data-status=complete] .diagram img")
        assert errors == []
        unhashed = [url for url in scripts if not HASHED_SCRIPT.search(url)]
        assert unhashed == []  # the modules' own imports were rewritten to the hashed names too
        names = {re.sub(r"\.[0-9a-f]{12}\.js$", ".js", url.split("/static/", 1)[1]) for url in scripts}
        assert {"js/chat.js", "js/chat/streaming.js", "js/chat/settings.js", "js/util.js",
                "vendor/markdown-it.esm.min.js", "vendor/katex/katex.esm.js", "vendor/mermaid/mermaid.min.js",
                "js/frames/diagram.js"} <= names
        for url, response in scripts.items():
            assert response.status == 200, url
            assert "immutable" in response.headers["cache-control"], url
    finally:
        context.close()
