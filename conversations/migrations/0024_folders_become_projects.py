"""Folders become projects: the model and the chat's link renamed (every folder is a project, its chats in it), and
a project's own instructions and default model added.

On SQLite, renaming the model and the chat's column rebuilds the conversation table, which drops the triggers of
migration 0004: they are dropped first and made again after, both ways, as migration 0007 does.
"""

import importlib

from django.conf import settings
from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0023_attachment_search_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(tool_calls.drop_sqlite_triggers, tool_calls.restore_sqlite_triggers),
        migrations.RemoveConstraint(model_name="folder", name="folder_name_unique_per_owner"),
        migrations.RenameModel(old_name="Folder", new_name="Project"),
        migrations.RenameField(model_name="conversation", old_name="folder", new_name="project"),
        migrations.AlterField(
            model_name="conversation",
            name="project",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=models.deletion.SET_NULL, related_name="conversations",
                to="conversations.project",
                help_text="The owner's project it lives in, if any (its instructions join the system prompt).",
            ),
        ),
        migrations.AlterField(
            model_name="project",
            name="owner",
            field=models.ForeignKey(
                on_delete=models.deletion.CASCADE, related_name="projects", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="instructions",
            field=models.TextField(
                blank=True, help_text="Added to the system prompt of every chat in the project, after the chat's own."
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="model",
            field=models.CharField(
                blank=True, max_length=100,
                help_text="The model a new chat in the project starts with; empty = as usual.",
            ),
        ),
        migrations.AddConstraint(
            model_name="project",
            constraint=models.UniqueConstraint(fields=("owner", "name"), name="project_name_unique_per_owner"),
        ),
        migrations.RunPython(tool_calls.restore_sqlite_triggers, tool_calls.drop_sqlite_triggers),
    ]
