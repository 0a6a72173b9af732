"""A user's own data: everything exported as one zip, and the account deleted with all of it."""

import json
import shutil
import tempfile
import zipfile

from django.contrib.auth import logout
from django.db import transaction
from django.utils import timezone

from conversations.exports import conversation_document, conversation_markdown, export_filename
from conversations.models import Attachment, Conversation
from conversations.selectors import conversation_tree, turn_path
from personal.selectors import personal_export

README = """Your chatsite data, exported {when}.

chats.json      every chat with every version of every message (follow parent_id; current_turn_id ends the
                branch that was shown), feedback included
chats/*.md      each chat's shown branch as Markdown
personal.json   your custom instructions, memory switch and memories
attachments/    the files you attached, as uploaded (one folder per file id)
"""


COPY_CHUNK_BYTES = 1024 * 1024


def account_export(*, user) -> tempfile.SpooledTemporaryFile:
    """The user's chats (JSON and Markdown) and attachments, as a zip in a temporary file (rewound)."""
    archive = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (FileResponse closes it)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zip_file:
        documents = []
        for conversation in Conversation.objects.for_user(user).order_by("created_at", "pk").iterator():
            documents.append(conversation_document(conversation, conversation_tree(conversation)))
            name = export_filename(conversation, "md").removesuffix(".md")
            zip_file.writestr(
                f"chats/{name}-{str(conversation.pk)[:8]}.md",
                conversation_markdown(conversation, turn_path(conversation)),
            )
        zip_file.writestr("chats.json", json.dumps({"chats": documents}, ensure_ascii=False, indent=2))
        zip_file.writestr("personal.json", json.dumps(personal_export(user=user), ensure_ascii=False, indent=2))
        missing = []
        for attachment in Attachment.objects.filter(owner=user).order_by("created_at", "pk").iterator():
            path = f"attachments/{attachment.pk}/{attachment.name}"
            try:
                source = attachment.file.open("rb")
            except FileNotFoundError:  # the row outlived its bytes: said in the README, not a failed export
                missing.append(path)
                continue
            with source, zip_file.open(path, "w") as target:
                shutil.copyfileobj(source, target, COPY_CHUNK_BYTES)  # never a whole file in memory
        readme = README.format(when=timezone.now().isoformat(timespec="seconds"))
        if missing:
            readme += "\nNo longer stored, so not included:\n" + "".join(f"  {path}\n" for path in missing)
        zip_file.writestr("README.txt", readme)
    archive.seek(0)
    return archive


def account_delete(*, request) -> None:
    """Delete the logged-in user with everything they own (chats, turns, keys, share links, folders, files) and
    end the session. The caller has checked their password."""
    user = request.user
    files = [attachment.file for attachment in Attachment.objects.filter(owner=user)]
    with transaction.atomic():
        user.delete()
    for stored in files:
        stored.delete(save=False)  # after the commit: a failed delete leaves no row pointing at a missing file
    logout(request)
