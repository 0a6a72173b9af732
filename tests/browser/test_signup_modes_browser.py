"""Sign-up modes and single sign-on in Chromium: an account waiting for approval, an invited sign-up (the admin
makes the link), a domain-limited sign-up, and a sign-in through a real OpenID Connect provider.

Each mode is a setting of the server, so this module starts its own chatsite servers (uvicorn, one per mode, on
copies of one migrated SQLite database) beside the provider (tests/oidc_provider, a second Django process).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.browser.helpers import PASSWORD, ROOT, screenshot
from tests.browser.test_accessibility import AXE, assert_clean
from tests.oidc_provider.server import OidcProvider
from tests.servers import Server, upstream_env

PHONE = {"width": 390, "height": 844}
ADMIN_PASSWORD = "root-Passw0rd!"


class ModeServer:
    def __init__(self, database: Path, env: dict) -> None:
        self.database = database
        self.server = Server(database_url=f"sqlite:///{database}", env=env)
        self.url = self.server.base_url

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()

    def manage(self, *args: str, env: dict | None = None) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**self.server.env, **(env or {})},
                       check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def servers(_fake_upstream_server):
    folder = Path(tempfile.mkdtemp(prefix="chatsite-signup-modes-"))
    migrated = folder / "migrated.sqlite3"
    model = upstream_env(_fake_upstream_server.base_url)
    ModeServer(migrated, model).manage("migrate", "--noinput", "-v", "0")
    provider = OidcProvider()
    modes = {
        "approval": {"SIGNUP_MODE": "approval"},
        "invite": {"SIGNUP_MODE": "invite"},
        "domain": {"SIGNUP_MODE": "domain", "SIGNUP_ALLOWED_DOMAINS": "example.com"},
    }
    started: dict[str, ModeServer] = {}
    try:
        for name, env in modes.items():
            shutil.copy(migrated, folder / f"{name}.sqlite3")
            started[name] = ModeServer(folder / f"{name}.sqlite3", {**model, **env, "SIGNUP_ATTEMPTS_PER_HOUR": "1000"})
        domain = started["domain"]
        provider.start([f"{domain.url}/oidc/callback/"])
        rp = provider.relying_party_settings()
        rp["CHAT_OUTBOUND_ALLOWED_HOSTS"] = ",".join(rp["CHAT_OUTBOUND_ALLOWED_HOSTS"])
        domain.server.env.update(rp)
        for mode_server in started.values():
            mode_server.server.launch()
        for mode_server in started.values():
            mode_server.server.wait_ready(60)
        yield {**started, "provider": provider}
    finally:
        for mode_server in started.values():
            mode_server.server.stop()
        provider.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def open_page(browser):
    contexts = []

    def open_page(base_url: str, *, color_scheme: str = "light", viewport: dict | None = None):
        context = browser.new_context(base_url=base_url, color_scheme=color_scheme,
                                      viewport=viewport or {"width": 1280, "height": 860})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.add_init_script(path=str(AXE))  # for assert_clean: WCAG 2.2 AA, as tests/browser/test_accessibility.py
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        return page

    yield open_page
    for context in contexts:
        context.close()


def fill_sign_up(page, username: str, email: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_email", email)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("form.form button[type=submit]")


def test_an_account_waiting_for_approval_sees_a_clear_page(servers, open_page):
    approval = servers["approval"]
    page = open_page(approval.url)
    page.goto("/accounts/signup/")
    assert "reviewed" in page.locator("main").inner_text()
    fill_sign_up(page, "pendingpat", "pat@example.com")

    page.wait_for_url("**/accounts/signup/pending/")
    notice = page.locator(".pending-notice").inner_text()
    assert "pendingpat" in notice and "cannot chat" in notice
    assert page.locator("h1").inner_text() == "Your account is waiting for approval"
    assert approval.query(
        "SELECT is_active, approval_pending FROM accounts_user WHERE username = ?", ("pendingpat",)
    ) == [(0, 1)]
    assert_clean(page, "signup-pending-light")
    screenshot(page, "signup-pending-light")

    page.goto("/")  # not signed in: the chat is not reachable
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", "pendingpat")
    page.fill("#id_password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url("**/accounts/signup/pending/")

    dark = open_page(approval.url, color_scheme="dark")
    dark.goto("/accounts/signup/pending/")
    assert dark.evaluate("document.documentElement.dataset.theme") == "dark"
    assert_clean(dark, "signup-pending-dark")
    screenshot(dark, "signup-pending-dark")
    phone = open_page(approval.url, viewport=PHONE)
    phone.goto("/accounts/signup/pending/")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone, "signup-pending-phone")
    assert page.errors == dark.errors == phone.errors == []


def test_an_invited_sign_up_with_the_admins_link(servers, open_page):
    invite = servers["invite"]
    page = open_page(invite.url)
    page.goto("/accounts/signup/")
    assert "by invitation only" in page.locator("[role=alert]").inner_text()
    assert page.locator("#id_password1").count() == 0

    invite.manage("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com",
                  env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})
    admin = open_page(invite.url)
    admin.goto("/admin/accounts/invite/add/")
    admin.fill("#id_username", "root")
    admin.fill("#id_password", ADMIN_PASSWORD)
    admin.click("input[type=submit]")
    admin.fill("#id_note", "for Ines")
    admin.fill("#id_max_uses", "1")
    admin.click("input[name=_save]")
    link = admin.locator("a.invite-link").first.inner_text()
    assert link.startswith(f"{invite.url}/accounts/signup/?invite=")

    invited = open_page(invite.url)
    invited.goto(link)
    fill_sign_up(invited, "ines", "ines@example.com")
    invited.wait_for_url(f"{invite.url}/")
    invited.wait_for_selector("#composer-input")
    assert invite.query("SELECT uses FROM accounts_invite") == [(1,)]

    again = open_page(invite.url)
    again.goto(link)
    assert "expired or has been used up" in again.locator("[role=alert]").inner_text()
    assert again.locator("#id_password1").count() == 0
    assert page.errors == admin.errors == invited.errors == again.errors == []


def test_a_domain_limited_sign_up(servers, open_page):
    domain = servers["domain"]
    page = open_page(domain.url)
    page.goto("/accounts/signup/")
    fill_sign_up(page, "outsider", "outsider@elsewhere.org")
    assert "Sign-up is limited to e-mail addresses at example.com." in page.locator(".field-error").inner_text()
    assert domain.query("SELECT count(*) FROM accounts_user WHERE username = 'outsider'") == [(0,)]

    page.fill("#id_email", "insider@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{domain.url}/")
    page.wait_for_selector("#composer-input")
    assert page.errors == []


def test_single_sign_on_from_the_login_button_to_the_chat(servers, open_page):
    domain, provider = servers["domain"], servers["provider"]
    with sqlite3.connect(domain.database) as connection:
        connection.execute("INSERT INTO auth_group (name) VALUES ('research')")
    provider.set_people({"sofia": {"password": "idp-Passw0rd!", "email": "sofia@example.com",
                                   "email_verified": True, "groups": ["research", "elsewhere-only"]}})
    page = open_page(domain.url)
    page.goto("/accounts/login/")
    button = page.locator("a.btn-sso")
    assert button.inner_text() == "Continue with Test IdP"
    assert_clean(page, "login-sso-light")
    screenshot(page, "login-sso-light")
    for name, options in {"login-sso-dark": {"color_scheme": "dark"}, "login-sso-phone": {"viewport": PHONE}}.items():
        other = open_page(domain.url, **options)
        other.goto("/accounts/login/")
        assert_clean(other, name)
        screenshot(other, name)

    button.click()
    page.wait_for_url(f"{provider.base_url}/login/**")
    page.fill("input[name=username]", "sofia")
    page.fill("input[name=password]", "idp-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{domain.url}/")
    page.wait_for_selector("#composer-input")
    assert domain.query(
        "SELECT g.name FROM accounts_user u JOIN accounts_user_groups ug ON ug.user_id = u.id "
        "JOIN auth_group g ON g.id = ug.group_id WHERE u.username = 'sofia'"
    ) == [("research",)]
    assert page.errors == []
