"""The storage ledger: an upload reserves its bytes before its file is written, and every way a file goes gives
them back (a failed upload, a deleted file, chat or account). Parallel uploads across workers:
tests/resilience/test_storage_quota.py."""

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from conversations import errors
from conversations.attachments import attachment_create, bind
from conversations.models import Attachment, Conversation, StorageUsage
from conversations.tests.factories import add_turns

pytestmark = pytest.mark.django_db


def upload(user, size: int, name: str = "notes.txt") -> Attachment:
    return attachment_create(owner=user, upload=SimpleUploadedFile(name, b"x" * size))


def ledger(user) -> int:
    return StorageUsage.objects.get(user=user).bytes


def test_an_upload_reserves_its_bytes_and_the_quota_refuses_past_them(user, other_user, settings):
    settings.CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES = 250
    upload(user, 100)
    upload(user, 100)
    assert ledger(user) == 200
    with pytest.raises(errors.AttachmentTooLarge, match="would use 300 bytes; your storage quota is 250 bytes"):
        upload(user, 100)
    assert ledger(user) == 200 and Attachment.objects.filter(owner=user).count() == 2
    upload(user, 50)  # exactly up to the quota
    assert ledger(user) == 250
    upload(other_user, 250)  # each user's own room
    assert ledger(other_user) == 250


def test_a_failed_upload_gives_its_bytes_back(user, monkeypatch):
    upload(user, 100)

    def storage_full(self, name, content):
        raise OSError("No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", storage_full)
    with pytest.raises(OSError, match="No space left"):
        upload(user, 40)
    assert ledger(user) == 100
    assert Attachment.objects.filter(owner=user).count() == 1


def test_a_refused_file_gives_its_bytes_back(user):
    upload(user, 100)
    with pytest.raises(errors.AttachmentRefused, match="not supported"):
        attachment_create(owner=user, upload=SimpleUploadedFile("program.bin", b"\x00\x01 binary"))
    assert ledger(user) == 100


def test_deleting_a_file_a_chat_or_an_account_gives_the_bytes_back(user, other_user):
    unsent = upload(user, 100)
    conversation = Conversation.objects.create(owner=user)
    bind([upload(user, 30), upload(user, 20)], add_turns(conversation, ("user", "two files")))
    upload(other_user, 70)
    assert ledger(user) == 150
    unsent.delete()
    assert ledger(user) == 50
    conversation.delete()
    assert ledger(user) == 0
    User.objects.filter(pk=other_user.pk).delete()
    assert not StorageUsage.objects.filter(user_id=other_user.pk).exists()
