"""A chat's web search switch (conversations/answering/search.py).

On SQLite, adding a NOT NULL column rebuilds the conversation table, which drops the triggers of migration 0004:
they are dropped first and made again after, both ways, as migration 0007 does.
"""

import importlib

from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0015_attachment_names_cleaned'),
    ]

    operations = [
        *tool_calls.keeping_sqlite_triggers(
            migrations.AddField(
                model_name='conversation',
                name='web_search',
                field=models.BooleanField(default=False, help_text='The user lets the model search the web in this chat (offered only when CHAT_SEARCH_URL is set).'),
            ),
        ),
    ]
