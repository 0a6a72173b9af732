"""Data migration: the "Reviewers" group, with view-only permissions on conversations, turns and feedback.

Staff users put in this group can read every chat in the admin and change nothing. The review log is left
out on purpose: only superusers see who reviewed what.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

REVIEWERS_GROUP = "Reviewers"
REVIEWER_PERMISSIONS = ["view_conversation", "view_turn", "view_feedback"]


def create_reviewers_group(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); make sure ours exist now.
    # create_permissions skips app configs without a models module, which migration state stubs lack.
    app_config = apps.get_app_config("conversations")
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    finally:
        app_config.models_module = models_module

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=REVIEWERS_GROUP)
    permissions = Permission.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="conversations", codename__in=REVIEWER_PERMISSIONS
    )
    assert permissions.count() == len(REVIEWER_PERMISSIONS), "conversations view permissions are missing"
    group.permissions.set(permissions)


def delete_reviewers_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=REVIEWERS_GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_reviewers_group, delete_reviewers_group),
    ]
