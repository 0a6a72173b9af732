"""A user's own data: everything exported as one zip, streamed as it is built; the account, or one chat of any
length, deleted in batches of short transactions (run as background tasks: conversations.tasks)."""

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from conversations.exports import conversation_document, conversation_markdown, conversation_trees, export_filename
from conversations.models import Attachment, Conversation, Feedback, Turn
from knowledge.retrieval import citations_by_turn
from personal.selectors import personal_export

README = """Your chatsite data, exported {when}.

chats.json      every chat with every version of every message (follow parent_id; current_turn_id ends the
                branch that was shown), feedback included
chats/*.md      each chat's shown branch as Markdown
personal.json   your custom instructions, memory switch, memories, prompts and assistants (with the groups
                they are shared with and an assistant's knowledge bases)
attachments/    the files you attached, as uploaded (one folder per file id)
"""


COPY_CHUNK_BYTES = 1024 * 1024
# A batch of chats is read with two queries (the chats, their turns with feedback) and holds at most about this
# many turns, whatever the size of the history: the export's memory is one batch and the zip's pending bytes.
BATCH_TURNS = 2000
BATCH_CHATS = 100


def chat_batches(user) -> Iterator[list]:
    """The user's conversation ids, oldest first, in batches of at most BATCH_CHATS chats and about BATCH_TURNS
    turns (a chat longer than that is a batch of its own). One query: the ids and stored turn counts."""
    batch: list = []
    turns = 0
    rows = Conversation.objects.for_user(user).order_by("created_at", "pk").values_list("pk", "turn_count")
    for pk, turn_count in rows:
        if batch and (len(batch) >= BATCH_CHATS or turns + turn_count > BATCH_TURNS):
            yield batch
            batch, turns = [], 0
        batch.append(pk)
        turns += turn_count
    if batch:
        yield batch


def shown_branch(conversation: Conversation, tree: list[Turn]) -> list[Turn]:
    """The branch shown (first message down to the current turn), taken from the whole tree already read."""
    by_id = {turn.pk: turn for turn in tree}
    branch = []
    turn_id = conversation.current_turn_id
    while turn_id is not None and turn_id in by_id:
        branch.append(by_id[turn_id])
        turn_id = by_id[turn_id].parent_id
    return branch[::-1]


class _ZipOutput(io.RawIOBase):
    """Where the zip writes: the bytes are taken out as they come, so the response streams the archive as it is
    built. Not seekable, so zipfile writes each entry's sizes after its data."""

    def __init__(self):
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def account_export(*, user) -> Iterator[bytes]:
    """The user's chats (JSON and Markdown) and attachments, as the bytes of a zip, yielded batch by batch.

    Each batch of chats costs two queries; chats.json is gathered in a temporary file (on disk past a few MB) and
    copied into the zip once the Markdown files are written.
    """
    output = _ZipOutput()
    with (
        zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as zip_file,
        tempfile.TemporaryFile(mode="w+b") as chats_json,
    ):
        chats_json.write(b'{"chats": [')
        first = True
        for batch in chat_batches(user):
            trees = list(conversation_trees(batch))
            citations = citations_by_turn(turn.pk for _, tree in trees for turn in tree)  # one query a batch
            for conversation, tree in trees:
                document = json.dumps(
                    conversation_document(conversation, tree, citations), ensure_ascii=False, indent=2
                )
                chats_json.write(("" if first else ",\n").encode() + document.encode())
                first = False
                name = export_filename(conversation, "md").removesuffix(".md")
                zip_file.writestr(
                    f"chats/{name}-{str(conversation.pk)[:8]}.md",
                    conversation_markdown(conversation, shown_branch(conversation, tree), citations),
                )
            yield output.take()
        chats_json.write(b"]}\n")
        chats_json.seek(0)
        with zip_file.open("chats.json", "w", force_zip64=True) as target:
            while chunk := chats_json.read(COPY_CHUNK_BYTES):
                target.write(chunk)
                yield output.take()
        zip_file.writestr("personal.json", json.dumps(personal_export(user=user), ensure_ascii=False, indent=2))
        missing = []
        for attachment in Attachment.objects.for_user(user).order_by("created_at", "pk").iterator():
            path = f"attachments/{attachment.pk}/{attachment.name}"
            try:
                source = attachment.file.open("rb")
            except FileNotFoundError:  # the row outlived its bytes: said in the README, not a failed export
                missing.append(path)
                continue
            with source, zip_file.open(path, "w") as target:
                while chunk := source.read(COPY_CHUNK_BYTES):  # never a whole file in memory
                    target.write(chunk)
                    yield output.take()
        readme = README.format(when=timezone.now().isoformat(timespec="seconds"))
        if missing:
            readme += "\nNo longer stored, so not included:\n" + "".join(f"  {path}\n" for path in missing)
        zip_file.writestr("README.txt", readme)
    yield output.take()


def conversations_delete(ids: list) -> None:
    """Delete these conversations with their turns, in one short transaction and a fixed number of statements.

    Django's delete collector would load every turn (the parent cascade, the attachments' file signal): the turns
    go with one DELETE instead, once what points at them is gone (attachments through the ORM, so their files go
    after the commit; feedback; the conversations' current turn). The caller keeps a batch to about BATCH_TURNS
    turns (chat_batches); a longer chat goes with conversation_delete_in_batches.
    """
    conversation_ids = [Conversation._meta.pk.get_db_prep_value(pk, connection) for pk in ids]
    with transaction.atomic():
        Attachment.objects.filter(turn__conversation_id__in=ids).delete()
        Feedback.objects.filter(turn__conversation_id__in=ids).delete()
        Conversation.objects.filter(pk__in=ids).update(current_turn=None)
        with connection.cursor() as cursor:
            placeholders = ", ".join(["%s"] * len(conversation_ids))  # the ids are parameters, never SQL text
            cursor.execute(
                f"DELETE FROM conversations_turn WHERE conversation_id IN ({placeholders})",  # noqa: S608
                conversation_ids,
            )
        Conversation.objects.filter(pk__in=ids).delete()


def conversation_delete_in_batches(conversation_id) -> None:
    """Delete one conversation of any length: its turns BATCH_TURNS at a time, deepest first (a turn's children
    are deeper than it, so no batch leaves a turn whose parent is gone), each batch a short transaction of its own;
    then the conversation. Nothing happens to a conversation that is already gone."""
    conversation = Conversation.objects.filter(pk=conversation_id).only("pk", "turn_count").first()
    if conversation is None:
        return
    if conversation.turn_count <= BATCH_TURNS:
        conversations_delete([conversation.pk])
        return
    Conversation.objects.filter(pk=conversation.pk).update(current_turn=None)
    while True:
        with transaction.atomic():
            batch = list(
                Turn.objects.filter(conversation=conversation).order_by("-position", "-pk")
                .values_list("pk", flat=True)[:BATCH_TURNS]
            )
            if not batch:
                break
            Attachment.objects.filter(turn_id__in=batch).delete()
            Feedback.objects.filter(turn_id__in=batch).delete()
            with connection.cursor() as cursor:
                placeholders = ", ".join(["%s"] * len(batch))  # the ids are parameters, never SQL text
                cursor.execute(f"DELETE FROM conversations_turn WHERE id IN ({placeholders})", batch)  # noqa: S608
    conversations_delete([conversation.pk])


def account_data_delete(*, user_id: int) -> None:
    """Delete a user with everything they own (chats, turns, keys, share links, folders, files), in batches.

    The chats go in batches (chat_batches), each in a transaction of its own, so no transaction lasts as long as
    the whole history; a chat longer than a batch goes in batches of its turns. The account goes last, so an
    interrupted deletion can be run again. Files leave the storage after the commit that removed their rows.
    """
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return
    for batch in chat_batches(user):
        if len(batch) == 1:
            conversation_delete_in_batches(batch[0])
        else:
            conversations_delete(batch)
    with transaction.atomic():
        user.delete()
