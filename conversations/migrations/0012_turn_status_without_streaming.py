"""A running answer is "pending" until it is stored: the "streaming" status was never assigned, and goes.

The running-turn index, the one-running-answer constraint and the status check are remade without it. On
SQLite, changing the check rebuilds the turn table: the triggers of migration 0004 are dropped first and made
again after, both ways, as migration 0007 does.
"""

import importlib

from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


def streaming_to_pending(apps, schema_editor):
    apps.get_model("conversations", "Turn").objects.filter(status="streaming").update(status="pending")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0011_conversation_source_chat_endpoint'),
    ]

    operations = [
        migrations.RunPython(streaming_to_pending, migrations.RunPython.noop),
        *tool_calls.keeping_sqlite_triggers(
            migrations.RemoveConstraint(
                model_name='turn',
                name='turn_status_valid',
            ),
            migrations.RemoveConstraint(
                model_name='turn',
                name='turn_one_running_per_conversation',
            ),
            migrations.RemoveIndex(
                model_name='turn',
                name='turn_running_idx',
            ),
            migrations.AlterField(
                model_name='turn',
                name='status',
                field=models.CharField(choices=[('pending', 'Pending'), ('complete', 'Complete'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='complete', max_length=10),
            ),
            migrations.AddIndex(
                model_name='turn',
                index=models.Index(condition=models.Q(('status', 'pending')), fields=['status', 'created_at'], name='turn_running_idx'),
            ),
            migrations.AddConstraint(
                model_name='turn',
                constraint=models.UniqueConstraint(condition=models.Q(('status', 'pending')), fields=('conversation',), name='turn_one_running_per_conversation'),
            ),
            migrations.AddConstraint(
                model_name='turn',
                constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'complete', 'failed', 'cancelled'])), name='turn_status_valid'),
            ),
        ),
    ]
