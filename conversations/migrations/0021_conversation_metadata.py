"""A chat's `metadata`: the key-value pairs of the Conversations API (/v1/conversations).

A nullable column without a default is an ALTER TABLE ADD COLUMN on SQLite too (no table rebuild), so the
triggers of migration 0004 stay as they are.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0020_conversation_mcp_tools'),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='metadata',
            field=models.JSONField(blank=True, help_text="Key-value pairs (strings) an API client keeps with the chat: the Conversations API's metadata.", null=True),
        ),
    ]
