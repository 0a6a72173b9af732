"""Start the test identity provider (tests/oidc_provider) as a real server on 127.0.0.1, and sign in through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers import ROOT, free_port

CLIENT_ID = "chatsite-test"
CLIENT_SECRET = "chatsite-test-client-secret"  # noqa: S105 (the test provider's)


class OidcProvider:
    """django-oauth-toolkit's OpenID Connect provider in a Django process of its own (`runserver`), with a
    SQLite database and a people directory (JSON) in a temporary folder."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.folder = Path(tempfile.mkdtemp(prefix="chatsite-idp-"))
        self.directory = self.folder / "people.json"
        self.directory.write_text("{}")
        self.logout_uris = self.folder / "backchannel-logout-uris.json"
        self.logout_uris.write_text("{}")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        self.private_key_pem = pem
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST"))
        }
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
            "IDP_DATABASE": str(self.folder / "idp.sqlite3"),
            "IDP_DIRECTORY": str(self.directory),
            "IDP_BACKCHANNEL_LOGOUT_URIS": str(self.logout_uris),
            "IDP_RSA_PRIVATE_KEY": pem,
        })
        self.log_path = ROOT / "test-artifacts" / f"oidc-provider-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/o"

    def _django(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self, redirect_uris: list[str], timeout: float = 30) -> OidcProvider:
        self._django("migrate", "--noinput", "-v", "0")
        self.register(redirect_uris)
        self.log_path.parent.mkdir(exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/o/.well-known/openid-configuration", timeout=2):  # noqa: S310
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the identity provider did not start:\n{self.log_path.read_text()[-3000:]}")
                time.sleep(0.2)

    def register(self, redirect_uris: list[str]) -> None:
        """The relying party's redirect URIs, replacing those registered before."""
        self._django("idp_client", CLIENT_ID, CLIENT_SECRET, *redirect_uris)

    def register_backchannel_logout(self, uri: str) -> None:
        """The relying party's back-channel logout URI (`backchannel_logout_uri`)."""
        self.logout_uris.write_text(json.dumps({CLIENT_ID: uri}))

    def set_people(self, people: dict[str, dict]) -> None:
        """username -> {password, email, email_verified, groups, sid}; read by the provider on each request."""
        self.directory.write_text(json.dumps(people))

    def sign_out(self, *, username: str | None = None, sid: str | None = None) -> dict:
        """Sign a person (`sub`) and/or a provider session (`sid`) out at the provider: it POSTs a signed logout
        token to the registered back-channel logout URI. Returns the relying party's answer: status, body."""
        fields = {"client_id": CLIENT_ID, "username": username or "", "sid": sid or ""}
        request = urllib.request.Request(f"{self.base_url}/test/sign-out/", data=urlencode(fields).encode())
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (the test provider)
            return json.load(answer)

    def relying_party_settings(self) -> dict:
        """chatsite's settings for this provider (its back-channel goes through the outbound allow-list)."""
        return {
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.base_url}/o/authorize/",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.base_url}/o/token/",
            "OIDC_OP_USER_ENDPOINT": f"{self.base_url}/o/userinfo/",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.base_url}/o/.well-known/jwks.json",
            "OIDC_OP_ISSUER": self.issuer,
            "OIDC_PROVIDER_NAME": "Test IdP",
            "CHAT_OUTBOUND_ALLOWED_HOSTS": [f"127.0.0.1:{self.port}"],
        }

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
