"""Delete temporary chats whose time is up (run it hourly from cron or a timer, like prune_conversations)."""

from django.core.management.base import BaseCommand

from conversations.organizing import temporary_chats_delete_expired


class Command(BaseCommand):
    help = "Delete temporary chats older than CHAT_TEMPORARY_HOURS (they are never listed in the history)."

    def handle(self, *args, **options):
        count = temporary_chats_delete_expired()
        self.stdout.write(f"Deleted {count} temporary chat(s).")
