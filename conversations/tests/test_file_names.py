"""A file's name is cleaned by one function however the file arrives: nothing that hides or reorders what is shown
(a right-to-left override makes "invoice\u202egpj.exe" read "invoiceexe.jpg") survives."""

import base64
import io
import json

import pytest

from conversations.attachments import clean_file_name
from conversations.models import Attachment

pytestmark = pytest.mark.django_db

# (as sent, as kept)
NAMES = [
    ("invoice\u202egpj.exe", "invoicegpj.exe"),  # RIGHT-TO-LEFT OVERRIDE
    ("\u2067report\u2069\u200f.pdf", "report.pdf"),  # isolates and a RIGHT-TO-LEFT MARK
    ("zero\u200bwidth\ufeff.txt", "zerowidth.txt"),  # ZERO WIDTH SPACE, BYTE ORDER MARK
    ("line\u2028break\x00\x1b.txt", "linebreak.txt"),  # LINE SEPARATOR, NUL, ESC
    ("\u202e\u202d", "file"),  # nothing left to show
]


@pytest.mark.parametrize(("sent", "kept"), NAMES)
def test_the_cleaning_removes_what_hides_or_reorders_a_name(sent, kept):
    assert clean_file_name(sent) == kept


def test_names_keep_their_letters_in_any_script():
    assert clean_file_name("보고서 القائمة.txt") == "보고서 القائمة.txt"
    assert clean_file_name("e\u0301te\u0301.md") == "été.md"  # composed (NFC)
    assert clean_file_name("../../etc/passwd") == ".._.._etc_passwd"
    assert clean_file_name("x" * 300 + ".txt") == "x" * 196 + ".txt"


@pytest.mark.parametrize(("sent", "kept"), NAMES[:4])
def test_a_rest_upload_is_cleaned(key_client, sent, kept):
    file = io.BytesIO(b"some notes")
    file.name = sent
    response = key_client.post("/api/v1/attachments/", {"file": file}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == kept
    assert Attachment.objects.get().name == kept


@pytest.mark.django_db(transaction=True)  # the model is called: the chat service's connection handling needs it
@pytest.mark.parametrize(("sent", "kept"), NAMES[:4])
def test_a_v1_file_part_is_cleaned(key_client, fake_upstream, user, sent, kept):
    data = "data:text/plain;base64," + base64.b64encode(b"some notes").decode()
    content = [{"type": "text", "text": "read this"}, {"type": "file", "file": {"file_data": data, "filename": sent}}]
    response = key_client.post("/v1/chat/completions", {
        "model": "fake-model", "messages": [{"role": "user", "content": content}]}, format="json")
    assert response.status_code == 200, response.content
    assert Attachment.objects.get(owner=user).name == kept
    assert f'<file name="{kept}">' in fake_upstream.chat_requests[-1].messages[-1]["content"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("sent", "kept"), [
    ("a\x00b.txt", "ab.txt"), ("x" * 5000 + ".txt", "x" * 196 + ".txt"), ("\ud800notes.txt", "notes.txt"),
])
def test_hostile_v1_file_part_names_are_cleaned_never_a_500(client, api_key, fake_upstream, user, sent, kept):
    data = "data:text/plain;base64," + base64.b64encode(b"some notes").decode()
    content = [{"type": "text", "text": "read this"}, {"type": "file", "file": {"file_data": data, "filename": sent}}]
    body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": content}]})  # \ud800 escaped
    response = client.post("/v1/chat/completions", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert response.status_code == 200, response.content
    assert Attachment.objects.get(owner=user).name == kept
