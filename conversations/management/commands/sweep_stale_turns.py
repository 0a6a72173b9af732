"""Mark answers left `pending`/`streaming` by a dead worker as failed (run at startup and from cron)."""

from django.core.management.base import BaseCommand

from conversations.services import turns_fail_stale


class Command(BaseCommand):
    help = "Mark abandoned answers (pending/streaming for longer than CHAT_STALE_TURN_SECONDS) as failed."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=None, metavar="SECONDS",
            help="Age in seconds (default: CHAT_STALE_TURN_SECONDS). 0 at startup of a single server fails them all.",
        )

    def handle(self, *args, older_than, **options):
        count = turns_fail_stale(older_than_seconds=older_than)
        self.stdout.write(f"Marked {count} abandoned answer(s) as failed.")
