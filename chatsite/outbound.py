"""The one way the server fetches a URL on a user's behalf: fixed timeouts, a size cap, allowed content types,
redirects followed by hand, and no connection to a loopback, private, link-local, shared (CGNAT), multicast,
reserved or cloud-metadata address unless the operator allow-lists the host (`CHAT_OUTBOUND_ALLOWED_HOSTS`).

Addresses are checked after DNS resolution, in the connector's own resolver: the address checked is the address
connected to, so a name that resolves to a public address for the check and to 127.0.0.1 for the connection
(DNS rebinding) cannot slip through. IP literals (which aiohttp never resolves) are checked before each hop.
Errors carry a transient/permanent flag, like healthchecks' hc/lib/curl.py: a timeout or a 5xx may work later,
a refused address or a 404 will not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings
from yarl import URL

CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
TOTAL_SECONDS = 15.0
MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/json")
USER_AGENT = "chatsite (+https://github.com/chatsite)"

# Addresses that `is_global` still lets through but that no fetch on a user's behalf should reach.
_EMBEDDED_IPV4 = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: the low 32 bits are an IPv4 address
    ipaddress.ip_network("64:ff9b:1::/48"),
)
_SIXTO4 = ipaddress.ip_network("2002::/16")  # 6to4: bits 16-48 are an IPv4 address


class OutboundError(Exception):
    """A fetch that did not give a usable page. `permanent`: trying again will not help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class AddressRefused(OutboundError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def address_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for any address that is not plainly a public unicast one (IPv4 inside IPv6 checked as IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return address_refused(ip.ipv4_mapped)
        if any(ip in network for network in _EMBEDDED_IPV4):
            return address_refused(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _SIXTO4:
            return address_refused(ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
        if ip.teredo is not None:
            return True
    return (
        not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
        or ip.is_private or ip.is_unspecified
    )


def host_allowed(host: str, port: int | None) -> bool:
    """The operator's allow-list: entries are a host (`searx.internal`) or a host and port (`127.0.0.1:8888`)."""
    host = host.lower().strip("[]")
    for entry in settings.CHAT_OUTBOUND_ALLOWED_HOSTS:
        entry = entry.lower()
        if entry == host or (port is not None and entry == f"{host}:{port}"):
            return True
    return False


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any spelling the C resolver accepts: `2130706433`, `0x7f000001`,
    `0177.0.0.1` and `127.1` are all 127.0.0.1 to getaddrinfo, so they are checked as such."""
    host = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host.lower()) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class CheckingResolver(AbstractResolver):
    """Resolves with getaddrinfo, then keeps only the addresses a fetch may reach; none left is a refusal."""

    def __init__(self) -> None:
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if host_allowed(host, port):
            return results
        allowed = [r for r in results if not address_refused(ipaddress.ip_address(r["host"].split("%")[0]))]
        if not allowed:
            raise AddressRefused(f"{host} resolves to an address the server does not fetch from.")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool  # cut at the size cap

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


def check_url(url: URL) -> None:
    """Refuse what can be refused before connecting: a scheme other than http(s), no host, a literal address."""
    if url.scheme not in ("http", "https"):
        raise OutboundError(f"only http and https URLs are fetched, not {url.scheme or 'a relative URL'}.",
                            permanent=True)
    if not url.host:
        raise OutboundError("the URL has no host.", permanent=True)
    if url.user or url.password:
        raise OutboundError("URLs with credentials are not fetched.", permanent=True)
    ip = _literal_ip(url.host)
    if ip is not None and address_refused(ip) and not host_allowed(url.host, url.port):
        raise AddressRefused(f"{url.host} is an address the server does not fetch from.")


async def fetch(
    url: str,
    *,
    params: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int = MAX_BYTES,
    content_types: tuple[str, ...] = TEXT_TYPES,
    total_seconds: float = TOTAL_SECONDS,
) -> Fetched:
    """GET a URL within the limits, following up to MAX_REDIRECTS redirects (each hop checked). A body larger
    than max_bytes is cut there (`truncated`). Raises OutboundError.

    With `form`, the request is a POST of those fields (an OpenID Connect token request, say) and a redirect is
    refused: following it would send the fields somewhere else or drop them. `headers` are added to each hop's.
    """
    try:
        target = URL(url)
        if params:
            target = target.update_query(params)
    except (ValueError, TypeError):
        raise OutboundError("that is not a valid URL.", permanent=True) from None
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS, sock_read=READ_SECONDS)
    connector = aiohttp.TCPConnector(resolver=CheckingResolver(), use_dns_cache=False, force_close=True)
    try:
        async with (
            asyncio.timeout(total_seconds),
            aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                  headers={"User-Agent": USER_AGENT}) as session,
        ):
            for _hop in range(MAX_REDIRECTS + 1):
                check_url(target)
                method = "GET" if form is None else "POST"
                async with session.request(
                    method, target, data=form, headers=headers, allow_redirects=False
                ) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        if form is not None:
                            raise OutboundError("the server redirected a form post.", permanent=True)
                        location = response.headers.get("Location")
                        if not location:
                            raise OutboundError("a redirect without a Location.", permanent=True)
                        target = target.join(URL(location))
                        continue
                    return await _read(response, target, max_bytes, content_types)
            raise OutboundError(f"more than {MAX_REDIRECTS} redirects.", permanent=True)
    except OutboundError:
        raise
    except TimeoutError:
        raise OutboundError(f"no complete answer within {total_seconds:g} s.", permanent=False) from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressRefused):
            raise exc.os_error from None
        raise OutboundError(f"could not connect to {target.host}.", permanent=False) from None
    except (aiohttp.ClientError, OSError) as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, AddressRefused):
            raise cause from None
        raise OutboundError(f"the fetch failed ({type(exc).__name__}).", permanent=False) from None


async def _read(response: Any, target: URL, max_bytes: int, content_types: tuple[str, ...]) -> Fetched:
    if response.status >= 400:
        raise OutboundError(f"the server answered {response.status}.", permanent=response.status < 500)
    content_type = response.content_type.lower()
    if content_type not in content_types:
        raise OutboundError(f"{content_type} is not a content type the server reads.", permanent=True)
    body = bytearray()
    truncated = False
    async for chunk in response.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > max_bytes:
            del body[max_bytes:]
            truncated = True
            break
    return Fetched(url=str(target), status=response.status, content_type=content_type,
                   charset=response.charset, body=bytes(body), truncated=truncated)


async def check_mcp_url(url: str) -> None:
    """The guard for a client that connects on its own (the MCP SDK's HTTP transport): the URL's scheme and
    literal address, then every address its host resolves to, unless the operator allow-lists the host.
    Raises AddressRefused (or OutboundError for a URL that is not http(s))."""
    try:
        target = URL(url)
    except (ValueError, TypeError):
        raise OutboundError("that is not a valid URL.", permanent=True) from None
    check_url(target)
    host = target.host or ""
    if host_allowed(host, target.port) or _literal_ip(host) is not None:
        return
    resolver = CheckingResolver()
    try:
        await resolver.resolve(host, target.port or 0, socket.AF_UNSPEC)
    except OSError:
        raise OutboundError(f"could not resolve {host}.", permanent=False) from None
    finally:
        await resolver.close()
