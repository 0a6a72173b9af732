"""Clean the names of files stored before every way in cleaned them alike (a /v1 file part kept a right-to-left
override): the same rule as conversations.attachments.clean_file_name, copied here as it is today, for the files
and for the names a share link's snapshot lists."""

import re
import unicodedata

from django.db import migrations

UNSHOWN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def clean_file_name(name):
    shown = "".join(char for char in (name or "") if unicodedata.category(char) not in UNSHOWN_CATEGORIES)
    shown = re.sub(r"[/\\]", "_", unicodedata.normalize("NFC", shown)).strip()[-200:].strip()
    return shown or "file"


def clean_names(apps, schema_editor):
    Attachment = apps.get_model("conversations", "Attachment")
    ShareLink = apps.get_model("conversations", "ShareLink")
    for attachment in Attachment.objects.only("pk", "name").iterator(chunk_size=2000):
        cleaned = clean_file_name(attachment.name)
        if cleaned != attachment.name:
            Attachment.objects.filter(pk=attachment.pk).update(name=cleaned)
    for link in ShareLink.objects.filter(include_files=True).only("pk", "messages").iterator(chunk_size=500):
        changed = False
        for message in link.messages:
            for entry in message.get("attachments", ()):
                cleaned = clean_file_name(entry.get("name"))
                if cleaned != entry.get("name"):
                    entry["name"], changed = cleaned, True
        if changed:
            ShareLink.objects.filter(pk=link.pk).update(messages=link.messages)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0014_storage_ledger"),
    ]

    operations = [
        migrations.RunPython(clean_names, migrations.RunPython.noop),
    ]
