"""Create a personal API key for a user from the command line; the key is printed once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey


class Command(BaseCommand):
    help = "Create a personal API key for USERNAME and print it (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="A label for the key (default: 'command line').")

    def handle(self, *args, username, name, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        key, raw = ApiKey.generate(user=user, name=name)
        self.stderr.write(f"Created API key {key.prefix}… for {username}. It is shown only now:")
        self.stdout.write(raw)
