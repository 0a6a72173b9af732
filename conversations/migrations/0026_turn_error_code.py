"""Why an answer failed, as the API's error code (a failed background response is polled with it).

On SQLite the NOT NULL column rebuilds the turn table: wrapped in the trigger drop and restore of migration 0007.
"""

import importlib

from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0025_conversation_review_totals'),
    ]

    operations = tool_calls.keeping_sqlite_triggers(
        migrations.AddField(
            model_name='turn',
            name='error_code',
            field=models.CharField(blank=True, help_text="Why an answer failed, as the API's error codes say it (upstream_rate_limited, interrupted...).", max_length=40),
        ),
    )
