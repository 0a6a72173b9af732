"""Attachments through the REST API: each document type's text reaches the model, images as image parts for
vision models (and a clear refusal for the others), hostile files refused or served inert, limits, owners only,
files deleted with their chats."""

import base64
import io
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from conversations.models import Attachment, Conversation, Turn
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db(transaction=True)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def pdf_with_text(text: str, *, claimed_pages: int | None = None) -> bytes:
    """A one-page PDF showing `text` in Helvetica (its page tree may claim more pages than it has)."""
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [3 0 R] /Count {claimed_pages or 1} >>".encode(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_with_text(text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", (
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
            f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p><w:p><w:r><w:t>Second paragraph.</w:t></w:r></w:p>"
            "</w:body></w:document>"
        ))
    return out.getvalue()


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (50 * 1024 * 1024))
    return out.getvalue()


def upload(client, name: str, data: bytes):
    return client.post("/api/v1/attachments/", {"file": _named(name, data)}, format="multipart")


def _named(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def send(client, conversation, content: str, ids: list):
    return client.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                       {"content": content, "attachments": [str(i) for i in ids]}, format="json")


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("notes.txt", b"plain notes: 42", "plain notes: 42"),
    ("README.md", b"# Title\n\n*markdown* body", "*markdown* body"),
    ("data.csv", b"a,b\n1,2\n", "a,b\n1,2"),
    ("data.json", b'{"key": "value"}', '{"key": "value"}'),
    ("page.html", b"<h1>Heading</h1><script>alert(1)</script>", "<h1>Heading</h1>"),
    ("code.py", "def f():\n    return 'π'\n".encode(), "return 'π'"),
    ("paper.pdf", pdf_with_text("Hello from a PDF"), "Hello from a PDF"),
    ("letter.docx", docx_with_text("Dear reader"), "Dear reader\nSecond paragraph."),
])
def test_each_document_types_text_reaches_the_model_once_extracted(key_client, user, fake_upstream, name, data,
                                                                  expected):
    response = upload(key_client, name, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "document" and body["name"] == name and body["text_chars"] > 0
    conversation = conversation_create(owner=user)
    assert send(key_client, conversation, "What is in the file?", [body["id"]]).status_code == 201
    sent = fake_upstream.chat_requests[-1].messages[-1]["content"]
    assert sent.startswith("What is in the file?") and f'<file name="{name}">' in sent and expected in sent
    attachment = Attachment.objects.get(pk=body["id"])
    assert attachment.turn.role == "user" and attachment.turn.conversation_id == conversation.pk

    # Later answers read the stored text again (no second extraction: the file could even be gone).
    Path(attachment.file.path).unlink()
    assert send(key_client, conversation, "And again?", []).status_code == 201
    assert expected in fake_upstream.chat_requests[-1].messages[1]["content"]


def test_an_image_goes_to_a_vision_model_as_an_image_part(key_client, user, fake_upstream, settings):
    settings.CHAT_VISION_MODELS = ["fake-model"]
    image = upload(key_client, "dot.png", PNG).json()
    assert image["kind"] == "image" and image["content_type"] == "image/png"
    conversation = conversation_create(owner=user)
    assert send(key_client, conversation, "Describe it", [image["id"]]).status_code == 201
    content = fake_upstream.chat_requests[-1].messages[-1]["content"]
    assert content[0] == {"type": "text", "text": "Describe it"}
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_a_chat_opened_with_an_image_gets_its_title_from_the_text_alone(key_client, user, fake_upstream, settings):
    settings.CHAT_VISION_MODELS = ["fake-model"]
    settings.CHAT_MODEL_TITLES = True
    image = upload(key_client, "dot.png", PNG).json()
    conversation = conversation_create(owner=user)
    assert send(key_client, conversation, "Describe it", [image["id"]]).status_code == 201
    title_prompt = fake_upstream.chat_requests[-1].messages[-1]["content"]
    assert title_prompt.endswith("Message: Describe it")  # not the parts' repr, with the image's base64 in it


def test_an_image_for_a_text_only_model_is_refused_before_anything_is_stored(key_client, user, fake_upstream):
    image = upload(key_client, "dot.png", PNG).json()
    conversation = conversation_create(owner=user)
    response = send(key_client, conversation, "Describe it", [image["id"]])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "attachment_refused"
    assert "reads text only" in response.json()["error"]["message"]
    assert not conversation.turns.exists() and fake_upstream.chat_requests == []
    assert Attachment.objects.get(pk=image["id"]).turn_id is None  # still yours to send elsewhere


@pytest.mark.parametrize(("name", "data", "status", "reason"), [
    ("huge.pdf", pdf_with_text("x", claimed_pages=100_000), 400, "pages"),
    ("bomb.docx", zip_bomb(), 400, "unpacks"),
    ("archive.zip", docx_with_text("x").replace(b"word/document.xml", b"word/other___.xml"), 400, "not a Word"),
    ("binary.bin", b"\x00\x01\x02 binary", 400, "not supported"),
    ("latin1.txt", "café".encode("latin-1"), 400, "UTF-8"),
    ("empty.txt", b"", 400, "empty"),
    ("broken.pdf", b"%PDF-1.4 this is not really a pdf", 400, "could not be read"),
])
def test_hostile_or_unreadable_files_get_a_clear_error(key_client, name, data, status, reason):
    response = upload(key_client, name, data)
    assert response.status_code == status, response.content
    assert reason in response.json()["error"]["message"], response.json()
    assert not Attachment.objects.exists()


def test_files_are_served_inert_and_typed_by_content(key_client):
    svg = upload(key_client, "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    assert svg.status_code == 201 and svg.json()["kind"] == "document"  # read as text, never an image
    html = upload(key_client, "page.html", b"<script>alert(1)</script>").json()
    disguised = upload(key_client, "notes.txt", PNG).json()  # a PNG named .txt is a PNG
    assert disguised["content_type"] == "image/png"
    for attachment, inline in ((svg.json(), False), (html, False), (disguised, True)):
        response = key_client.get(attachment["url"])
        assert response.status_code == 200
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert response["Content-Disposition"].startswith("inline" if inline else "attachment")
        assert response["Content-Type"] != "text/html" and "svg" not in response["Content-Type"]


def test_a_file_no_longer_in_storage_is_a_404_not_a_500(key_client, client, user):
    attachment = upload(key_client, "notes.txt", b"some notes").json()
    stored = Attachment.objects.get(pk=attachment["id"])
    stored.file.storage.delete(stored.file.name)
    response = key_client.get(attachment["url"])
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", response.content


def test_limits_are_clear(key_client, user, settings, fake_upstream):
    settings.CHAT_ATTACHMENT_MAX_BYTES = 100
    response = upload(key_client, "big.txt", b"x" * 101)
    assert response.status_code == 413 and "100 bytes" in response.json()["error"]["message"]
    settings.CHAT_ATTACHMENT_MAX_BYTES = 10_000
    settings.CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES = 150
    assert upload(key_client, "a.txt", b"x" * 100).status_code == 201
    response = upload(key_client, "b.txt", b"x" * 100)
    assert response.status_code == 413 and "storage quota" in response.json()["error"]["message"]
    settings.CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES = 10**9
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 2
    ids = [upload(key_client, f"{i}.txt", b"text").json()["id"] for i in range(3)]
    response = send(key_client, conversation_create(owner=user), "three files", ids)
    # Refused as the published schema says (its maxItems is the setting), naming the field.
    assert response.status_code == 400 and "At most 2 files" in response.json()["error"]["fields"]["attachments"][0]
    settings.CHAT_ATTACHMENT_MAX_TEXT_CHARS = 10
    truncated = upload(key_client, "long.txt", b"0123456789abcdef").json()
    assert truncated["text_truncated"] is True and truncated["text_chars"] == 10
    conversation = conversation_create(owner=user)
    assert send(key_client, conversation, "read", [truncated["id"]]).status_code == 201
    assert "Only the first 10 characters" in fake_upstream.chat_requests[-1].messages[-1]["content"]


def test_files_too_long_for_the_models_context_are_refused_before_sending(key_client, user, settings, fake_upstream):
    settings.CHAT_CONTEXT_TOKENS = 1000
    long = upload(key_client, "long.txt", b"word " * 2000).json()
    response = send(key_client, conversation_create(owner=user), "summarize", [long["id"]])
    assert response.status_code == 400 and "too long for this model" in response.json()["error"]["message"]
    assert fake_upstream.chat_requests == []


def test_nobody_else_can_read_or_send_your_files(key_client, other_user, user, fake_upstream):
    from rest_framework.test import APIClient

    from accounts.models import ApiKey

    mine = upload(key_client, "mine.txt", b"my secret").json()
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.generate(user=other_user, name='bob')[1]}")
    for url in (f"/api/v1/attachments/{mine['id']}/", mine["url"]):
        assert bob.get(url).status_code == 404
    assert bob.delete(f"/api/v1/attachments/{mine['id']}/").status_code == 404
    response = send(bob, conversation_create(owner=other_user), "steal", [mine["id"]])
    assert response.status_code == 400 and fake_upstream.chat_requests == []
    assert Attachment.objects.get(pk=mine["id"]).turn_id is None


def test_deleting_a_chat_deletes_its_files_and_prune_deletes_old_unsent_ones(key_client, user, fake_upstream):
    sent = upload(key_client, "sent.txt", b"sent").json()
    conversation = conversation_create(owner=user)
    send(key_client, conversation, "with a file", [sent["id"]])
    path = Path(Attachment.objects.get(pk=sent["id"]).file.path)
    assert path.exists()
    assert key_client.delete(f"/api/v1/conversations/{conversation.pk}/").status_code == 204
    assert not path.exists() and not Attachment.objects.filter(pk=sent["id"]).exists()

    unsent = upload(key_client, "unsent.txt", b"never sent").json()
    unsent_path = Path(Attachment.objects.get(pk=unsent["id"]).file.path)
    Attachment.objects.filter(pk=unsent["id"]).update(created_at=timezone.now() - timedelta(days=2))
    call_command("prune_conversations", "--older-than", "30")
    assert not Attachment.objects.filter(pk=unsent["id"]).exists() and not unsent_path.exists()
    assert Conversation.objects.count() == 0 and Turn.objects.count() == 0


def test_the_chat_page_shows_the_files_and_its_query_count_does_not_grow(
    key_client, authenticated_client, user, fake_upstream, settings
):
    settings.CHAT_VISION_MODELS = ["fake-model"]
    conversation = conversation_create(owner=user)
    ids = [upload(key_client, "dot.png", PNG).json()["id"], upload(key_client, "notes.txt", b"notes").json()["id"]]
    assert send(key_client, conversation, "two files", ids).status_code == 201
    html = authenticated_client.get(conversation.get_absolute_url()).content.decode()
    assert f'src="/api/v1/attachments/{ids[0]}/content/"' in html and 'alt="dot.png"' in html
    assert f'href="/api/v1/attachments/{ids[1]}/content/" download="notes.txt"' in html

    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            authenticated_client.get(conversation.get_absolute_url())
        return len(captured)

    before = page_queries()
    more = [upload(key_client, f"{i}.txt", b"more").json()["id"] for i in range(4)]
    assert send(key_client, conversation, "four more", more).status_code == 201
    assert page_queries() == before
    turns = key_client.get(f"/api/v1/conversations/{conversation.pk}/").json()["turns"]
    assert [len(t["attachments"]) for t in turns] == [2, 0, 4, 0]


def test_reviewers_open_sent_files_from_the_admin_and_the_owner_is_told(key_client, user, make_user, fake_upstream):
    from django.test import Client

    from conversations.models import ReviewLog
    from conversations.tests.admin_support import make_reviewer

    conversation = conversation_create(owner=user)
    sent = upload(key_client, "report.txt", b"quarterly").json()
    send(key_client, conversation, "see file", [sent["id"]])
    unsent = upload(key_client, "draft.txt", b"draft").json()

    reviewer = Client()
    reviewer.force_login(make_reviewer(make_user))
    page = reviewer.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()
    assert f'href="/admin/attachments/{sent["id"]}/"' in page and "report.txt" in page
    ReviewLog.objects.all().delete()
    response = reviewer.get(f"/admin/attachments/{sent['id']}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"quarterly"
    assert response["Content-Disposition"].startswith("attachment") and response["X-Content-Type-Options"] == "nosniff"
    assert ReviewLog.objects.filter(conversation=conversation).count() == 1
    assert reviewer.get(f"/admin/attachments/{unsent['id']}/").status_code == 404  # not part of any chat

    staff = Client()
    staff.force_login(make_user("plainstaff", is_staff=True))
    assert staff.get(f"/admin/attachments/{sent['id']}/").status_code == 403


def test_a_message_may_be_only_files_and_an_empty_one_is_refused(key_client, user, fake_upstream):
    conversation = conversation_create(owner=user)
    document = upload(key_client, "minutes.txt", b"the meeting decided 42").json()
    response = send(key_client, conversation, "", [document["id"]])
    assert response.status_code == 201, response.content
    assert response.json()["user_turn"]["content"] == ""
    assert "the meeting decided 42" in fake_upstream.chat_requests[-1].messages[-1]["content"]
    conversation.refresh_from_db()
    assert conversation.title == "minutes.txt"
    no_text = key_client.post(f"/api/v1/conversations/{conversation.pk}/turns/", {"attachments": []}, format="json")
    assert no_text.status_code == 400 and "empty" in no_text.json()["error"]["fields"]["content"][0]
    blank = send(key_client, conversation, "  \n", [])
    assert blank.status_code == 400


def test_a_body_past_the_upload_limit_says_the_file_limit(key_client, settings):
    """A file far past the limit is refused by the body size, before it is read: the error still says the limit
    the server knows, not "the request body is too large"."""
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1_000
    response = upload(key_client, "huge.txt", b"x" * 200_000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "attachment_too_large"
    assert "the limit is 1,000 bytes per file" in response.json()["error"]["message"]


def test_the_title_request_sends_the_message_not_its_files(key_client, user, fake_upstream, settings):
    settings.CHAT_MODEL_TITLES = True
    document = upload(key_client, "secret-plans.txt", b"the whole text of the plans").json()
    conversation = conversation_create(owner=user)
    assert send(key_client, conversation, "Summarise this", [document["id"]]).status_code == 201
    for _ in range(200):  # the title is asked for after the answer is stored
        if len(fake_upstream.chat_requests) == 2:
            break
        time.sleep(0.02)
    answer_request, title_request = fake_upstream.chat_requests
    assert "the whole text of the plans" in answer_request.messages[-1]["content"]
    assert "Summarise this" in title_request.messages[-1]["content"]
    assert "the whole text of the plans" not in title_request.messages[-1]["content"]
