"""The outbound HTTP wrapper against real local servers: refused address classes (after resolution and on every
redirect), the operator's allow-list, the size cap, the time limit, content types and the error flag."""

import asyncio
import ipaddress
import json

import pytest
from aiohttp import web

from chatsite import outbound

BIG_CHUNK = b"x" * (1024 * 1024)


def page_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="<p>hello</p>", content_type="text/html")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(50):  # 50 MB if read to the end
            await response.write(BIG_CHUNK)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="too late")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="later")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def echo_form(request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response({"form": dict(form), "authorization": request.headers.get("Authorization")})

    async def redirect_post(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/echo")

    app = web.Application()
    app.router.add_post("/echo", echo_form)
    app.router.add_post("/redirect-post", redirect_post)
    app.router.add_get("/", hello)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/huge", huge)
    app.router.add_get("/slow", slow)
    app.router.add_get("/image", image)
    app.router.add_get("/missing", missing)
    app.router.add_get("/broken", broken)
    app.router.add_get("/loop", loop)
    return app


@pytest.fixture
async def server():
    runner = web.AppRunner(page_app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port
    await runner.cleanup()


@pytest.fixture
def allowed(settings, server):
    """Only the test server's own host and port pass: 127.0.0.1 on any other port is still refused."""
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{server}"]
    return f"http://127.0.0.1:{server}"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "100.100.100.200", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001:db8::1", "2001::1",
])
def test_non_public_address_classes_are_refused(address):
    assert outbound.address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_pass(address):
    assert not outbound.address_refused(ipaddress.ip_address(address))


async def test_an_allow_listed_host_and_port_is_fetched(allowed):
    page = await outbound.fetch(allowed + "/", params={"q": "a b"})
    assert page.status == 200 and page.text() == "<p>hello</p>" and not page.truncated
    assert page.url.endswith("/?q=a+b") and page.content_type == "text/html"


async def test_a_form_is_posted_with_the_given_headers(allowed):
    page = await outbound.fetch(allowed + "/echo", form={"grant_type": "authorization_code", "code": "a b"},
                                headers={"Authorization": "Bearer t"}, content_types=("application/json",))
    assert json.loads(page.body) == {"form": {"grant_type": "authorization_code", "code": "a b"},
                                     "authorization": "Bearer t"}


async def test_a_posted_form_is_never_sent_on_by_a_redirect(allowed):
    with pytest.raises(outbound.OutboundError, match="redirected a form post") as refused:
        await outbound.fetch(allowed + "/redirect-post", form={"code": "secret"}, content_types=("application/json",))
    assert refused.value.permanent


async def test_a_form_post_to_a_private_address_is_refused_without_the_allow_list(server, settings):
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(outbound.AddressRefused):
        await outbound.fetch(f"http://127.0.0.1:{server}/echo", form={"code": "secret"})


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "localhost", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::1]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
])
async def test_loopback_in_any_spelling_is_refused(settings, server, spelling):
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(outbound.OutboundError) as refused:
        await outbound.fetch(f"http://{spelling}:{server}/")
    assert refused.value.permanent
    assert isinstance(refused.value, outbound.AddressRefused), str(refused.value)


@pytest.mark.parametrize("target", ["http://127.0.0.1:{other}/", "http://169.254.169.254/latest/meta-data/",
                                    "http://[::1]:{other}/", "http://localhost:{other}/", "http://2130706433:{other}/"])
async def test_a_redirect_to_a_refused_address_is_refused(allowed, server, target):
    # Another real server on 127.0.0.1 that would answer if the hop were not checked.
    runner = web.AppRunner(page_app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    other = runner.addresses[0][1]
    try:
        with pytest.raises(outbound.AddressRefused):
            await outbound.fetch(allowed + "/redirect", params={"to": target.format(other=other)})
    finally:
        await runner.cleanup()


async def test_a_redirect_to_an_allowed_host_is_followed(allowed):
    page = await outbound.fetch(allowed + "/redirect", params={"to": "/"})
    assert page.text() == "<p>hello</p>" and page.url == allowed + "/"


async def test_a_50_mb_page_is_cut_at_the_limit(allowed):
    page = await outbound.fetch(allowed + "/huge", max_bytes=100_000)
    assert page.truncated and len(page.body) == 100_000


async def test_a_slow_page_times_out_as_a_transient_error(allowed):
    with pytest.raises(outbound.OutboundError) as slow:
        await outbound.fetch(allowed + "/slow", total_seconds=0.3)
    assert not slow.value.permanent and "0.3 s" in str(slow.value)


@pytest.mark.parametrize("path, permanent", [("/image", True), ("/missing", True), ("/broken", False),
                                             ("/loop", True)])
async def test_errors_carry_the_transient_or_permanent_flag(allowed, path, permanent):
    with pytest.raises(outbound.OutboundError) as failed:
        await outbound.fetch(allowed + path)
    assert failed.value.permanent is permanent


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "http://user:pw@example.com/", "/x"])
async def test_other_schemes_credentials_and_relative_urls_are_refused(url):
    with pytest.raises(outbound.OutboundError) as refused:
        await outbound.fetch(url)
    assert refused.value.permanent


async def test_a_closed_port_is_a_transient_error(allowed, settings):
    sock_runner = web.AppRunner(page_app(), shutdown_timeout=0.1)
    await sock_runner.setup()
    site = web.TCPSite(sock_runner, "127.0.0.1", 0)
    await site.start()
    closed = sock_runner.addresses[0][1]
    await sock_runner.cleanup()
    settings.CHAT_OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{closed}"]
    with pytest.raises(outbound.OutboundError) as failed:
        await outbound.fetch(f"http://127.0.0.1:{closed}/")
    assert not failed.value.permanent and not isinstance(failed.value, outbound.AddressRefused)


def test_a_charset_python_does_not_know_is_read_as_utf8():
    odd = outbound.Fetched(url="http://example.com/", status=200, content_type="text/html", charset="x-no-such-charset",
                           body="café".encode(), truncated=False)
    assert odd.text() == "café"
