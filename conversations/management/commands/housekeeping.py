"""Delete what is past its time: temporary chats and files never sent. `manage.py serve` runs this at start and
then every CHAT_HOUSEKEEPING_SECONDS; without it, run it hourly from cron (README, Operating chatsite)."""

from django.core.management.base import BaseCommand

from conversations.housekeeping import housekeeping


class Command(BaseCommand):
    help = "Delete temporary chats past CHAT_TEMPORARY_HOURS and files uploaded but never sent for a day."

    def handle(self, *args, **options):
        deleted = housekeeping()
        self.stdout.write("Deleted " + ", ".join(f"{count} {what}" for what, count in deleted.items()) + ".")
