"""Delete what is past its time (temporary chats and files never sent) and queue the embedding of knowledge passages
an outage of the embeddings model left without vectors. `manage.py serve` runs this at start and then every
CHAT_HOUSEKEEPING_SECONDS; without it, run it hourly from cron (README, Operating chatsite)."""

from django.core.management.base import BaseCommand

from conversations.housekeeping import housekeeping
from knowledge.vectors import embeddings_catch_up


class Command(BaseCommand):
    help = ("Delete temporary chats past CHAT_TEMPORARY_HOURS and files uploaded but never sent for a day; queue the "
            "embedding of passages without vectors (KNOWLEDGE_EMBEDDINGS_MODEL).")

    def handle(self, *args, **options):
        deleted = housekeeping()
        self.stdout.write("Deleted " + ", ".join(f"{count} {what}" for what, count in deleted.items()) + ".")
        catch_up = embeddings_catch_up()
        if catch_up is not None:
            self.stdout.write(str(catch_up))
