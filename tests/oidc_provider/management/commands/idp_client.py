"""Register (or update) the relying party: a confidential client with the code flow, RS256 ID tokens and no
consent screen."""

from django.core.management.base import BaseCommand
from oauth2_provider.models import Application


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("client_secret")
        parser.add_argument("redirect_uris", nargs="+")

    def handle(self, *args, client_id, client_secret, redirect_uris, **options):
        application = Application.objects.filter(client_id=client_id).first() or Application(client_id=client_id)
        application.name = "chatsite"
        application.client_secret = client_secret
        application.client_type = Application.CLIENT_CONFIDENTIAL
        application.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
        application.algorithm = Application.RS256_ALGORITHM
        application.skip_authorization = True
        application.redirect_uris = " ".join(redirect_uris)
        application.save()
