"""API key admin: prefix, owner, last used and revoked state; never the key or its hash."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_key_list_and_page_show_prefix_owner_and_state_but_never_the_key(superuser_client, user):
    key, raw = ApiKey.generate(user=user, name="laptop script")
    for url in [reverse("admin:accounts_apikey_changelist"), reverse("admin:accounts_apikey_change", args=[key.pk])]:
        html = superuser_client.get(url).content.decode()
        assert f"cs_{key.prefix}_…" in html
        assert "alice" in html and "laptop script" in html
        assert raw not in html
        assert raw.split("_", 2)[2] not in html  # not even the secret part
        assert key.key_hash not in html


def test_keys_cannot_be_added_or_edited_only_revoked(superuser_client, user):
    key, _ = ApiKey.generate(user=user, name="k")
    other, _ = ApiKey.generate(user=user, name="other")
    assert superuser_client.get(reverse("admin:accounts_apikey_add")).status_code == 403
    response = superuser_client.post(reverse("admin:accounts_apikey_change", args=[key.pk]), {"name": "renamed"})
    assert response.status_code == 403

    response = superuser_client.post(
        reverse("admin:accounts_apikey_changelist"), {"action": "revoke_selected", "_selected_action": [key.pk]}
    )
    assert response.status_code == 302
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None and key.name == "k"
    assert other.revoked_at is None

    response = superuser_client.get(reverse("admin:accounts_apikey_changelist"), {"state": "revoked"})
    assert list(response.context["cl"].result_list) == [key]
    response = superuser_client.get(reverse("admin:accounts_apikey_changelist"), {"state": "active"})
    assert list(response.context["cl"].result_list) == [other]
