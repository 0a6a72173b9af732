"""The single sign-on tests' identity provider: a real OpenID Connect server (tests/oidc_provider), one for the
module's tests, registered for the test client's callback URL."""

import pytest

from tests.oidc_provider.server import OidcProvider


@pytest.fixture(scope="module")
def oidc_provider():
    provider = OidcProvider().start(["http://testserver/oidc/callback/"])
    yield provider
    provider.stop()


@pytest.fixture
def sso(oidc_provider, settings):
    """chatsite configured for the provider, which starts each test with nobody in its directory."""
    for name, value in oidc_provider.relying_party_settings().items():
        setattr(settings, name, value)
    oidc_provider.set_people({})
    return oidc_provider
