"""Retention: delete conversations whose last activity is older than --older-than DAYS (--dry-run to preview),
with their attachments' files; and files uploaded but never sent for a day (attachments.UNSENT_FILE_HOURS; the
hourly `housekeeping` deletes those too)."""

from collections import Counter
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from conversations.attachments import unsent_attachments, unsent_attachments_delete
from conversations.models import Attachment, Conversation, Feedback, ReviewLog, Turn

# Conversations deleted per transaction: bounded locks and memory however much is pruned.
BATCH_SIZE = 500


def _positive_int(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise CommandError(f"--older-than must be a whole number of days, not {value!r}.")
    if days < 1:
        raise CommandError("--older-than must be at least 1 day.")
    return days


class Command(BaseCommand):
    help = "Delete conversations (with their turns, feedback and review log) inactive for more than DAYS days."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", required=True, type=_positive_int, metavar="DAYS",
            help="Delete conversations whose last activity (updated_at) is more than DAYS days ago.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be deleted.")

    def handle(self, *args, older_than: int, dry_run: bool, **options):
        cutoff = timezone.now() - timedelta(days=older_than)
        stale = Conversation.objects.filter(updated_at__lt=cutoff)
        if dry_run:
            counts = {
                "conversations": stale.count(),
                "turns": Turn.objects.filter(conversation__in=stale).count(),
                "feedback": Feedback.objects.filter(turn__conversation__in=stale).count(),
                "review log entries": ReviewLog.objects.filter(conversation__in=stale).count(),
                "attachments": Attachment.objects.filter(turn__conversation__in=stale).count()
                + unsent_attachments().count(),
            }
            self.stdout.write(f"Dry run: would delete {self._describe(counts)} (last activity before "
                              f"{cutoff:%Y-%m-%d %H:%M} UTC).")
            return

        deleted: Counter[str] = Counter()
        while True:
            with transaction.atomic():
                batch = list(stale.order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE])
                if not batch:
                    break
                # Re-check the cutoff inside the delete: a chat that got a new turn meanwhile stays.
                _, per_model = Conversation.objects.filter(pk__in=batch, updated_at__lt=cutoff).delete()
            deleted.update(per_model)
            if len(batch) < BATCH_SIZE:
                break
        deleted[Attachment._meta.label] += unsent_attachments_delete()
        counts = {
            "conversations": deleted[Conversation._meta.label],
            "turns": deleted[Turn._meta.label],
            "feedback": deleted[Feedback._meta.label],
            "review log entries": deleted[ReviewLog._meta.label],
            "attachments": deleted[Attachment._meta.label],
        }
        self.stdout.write(self.style.SUCCESS(
            f"Deleted {self._describe(counts)} (last activity before {cutoff:%Y-%m-%d %H:%M} UTC)."
        ))

    @staticmethod
    def _describe(counts: dict[str, int]) -> str:
        return ", ".join(f"{count} {name}" for name, count in counts.items())
