"""A person signing in through the provider, without a browser: chatsite is the Django test client, the provider
is reached over real HTTP, and each redirect goes to whichever of the two it names."""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from tests.oidc_provider.server import OidcProvider


def sign_in(client, provider: OidcProvider, username: str, password: str, *, start: str = "/oidc/authenticate/"):
    """Start at chatsite's `start`, log in at the provider's form, and return chatsite's first response that is
    not a redirect (its `redirect_chain` lists chatsite's redirects after the provider's callback)."""
    browser = requests.Session()
    response = client.get(start)
    for _hop in range(20):
        if response.status_code not in (301, 302, 303):
            return response
        location = response["Location"]
        while location.startswith(provider.base_url):
            at_provider = browser.get(location, allow_redirects=False, timeout=10)
            if at_provider.status_code == 200 and urlsplit(at_provider.url).path == "/login/":
                at_provider = browser.post(
                    at_provider.url,
                    data={"username": username, "password": password, "next": _next_of(at_provider.url),
                          "csrfmiddlewaretoken": browser.cookies["idp_csrftoken"]},
                    headers={"Referer": at_provider.url}, allow_redirects=False, timeout=10,
                )
            if at_provider.status_code not in (301, 302, 303):
                raise AssertionError(f"the provider answered {at_provider.status_code}: {at_provider.text[:500]}")
            location = urljoin(at_provider.url, at_provider.headers["Location"])
        parts = urlsplit(location)
        response = client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path, follow=True)
    raise AssertionError("more than 20 redirects")


def _next_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("next", [""])[0]
