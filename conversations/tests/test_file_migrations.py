"""Migrations 0014-0015 carry stored files over: the storage ledger starts from the files stored, and names kept
before every way in was cleaned alike are cleaned (the files' and those a share link's snapshot lists)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conversations.models import Attachment, ShareLink, StorageUsage


@pytest.mark.django_db(transaction=True)
def test_the_ledger_starts_from_the_stored_files_and_old_names_are_cleaned():
    before = [("conversations", "0013_share_link_files")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    try:
        User = old.get_model("accounts", "User")
        OldAttachment = old.get_model("conversations", "Attachment")
        owner, other = User.objects.create(username="legacy"), User.objects.create(username="other")
        files = [
            OldAttachment.objects.create(owner=owner, file=f"attachments/{i}", name=name, content_type="text/plain",
                                         kind="document", size=size, sha256="0" * 64)
            for i, (name, size) in enumerate([("invoice\u202egpj.exe", 100), ("notes.txt", 50)])
        ]
        chat = old.get_model("conversations", "Conversation").objects.create(owner=owner)
        link = old.get_model("conversations", "ShareLink").objects.create(
            token="t", conversation=chat, include_files=True, messages=[{
                "role": "user", "content": "see",
                "attachments": [{"id": str(files[0].pk), "name": "invoice\u202egpj.exe"}],
            }])

        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert StorageUsage.objects.get(user_id=owner.pk).bytes == 150
        assert not StorageUsage.objects.filter(user_id=other.pk).exists()  # made at its first upload
        assert Attachment.objects.get(pk=files[0].pk).name == "invoicegpj.exe"
        assert Attachment.objects.get(pk=files[1].pk).name == "notes.txt"
        assert ShareLink.objects.get(pk=link.pk).messages[0]["attachments"][0]["name"] == "invoicegpj.exe"
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
