"""Migration 0004 moves the open sessions of Django's table to accounts.UserSession: nobody is signed out by the
deploy, and the sessions already open can be ended by a back-channel logout like new ones."""

from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User, UserSession


@pytest.mark.django_db(transaction=True)
def test_open_sessions_move_to_the_new_table_with_their_user_and_expired_ones_do_not():
    before = [("accounts", "0003_apikey_store_chats")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        user = User.objects.create_user("legacy", password="legacy-Passw0rd!")
        signed_in = DjangoSessionStore()
        signed_in.update({SESSION_KEY: str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                          "_auth_user_hash": user.get_session_auth_hash()})
        signed_in.create()
        anonymous = DjangoSessionStore()
        anonymous["language"] = "ko"
        anonymous.create()
        expired = DjangoSessionStore()
        expired[SESSION_KEY] = str(user.pk)
        expired.set_expiry(timezone.now() - timedelta(days=1))
        expired.create()

        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

        assert dict(UserSession.objects.values_list("session_key", "user_id")) == {
            signed_in.session_key: user.pk, anonymous.session_key: None,
        }
        client = Client()
        client.cookies["sessionid"] = signed_in.session_key
        assert client.get(reverse("profile")).status_code == 200  # still signed in, through the new engine
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
