"""A chat's `mcp_tools`: the MCP tools its owner enabled (conversations/answering/mcp.py).

On SQLite, adding a column with a default rebuilds the conversation table, which drops the triggers of migration
0004: they are dropped first and made again after, both ways, as migration 0007 does.
"""

import importlib

from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0019_conversation_personal'),
    ]

    operations = [
        migrations.RunPython(tool_calls.drop_sqlite_triggers, tool_calls.restore_sqlite_triggers),
        migrations.AddField(
            model_name='conversation',
            name='mcp_tools',
            field=models.JSONField(blank=True, default=list, help_text='The MCP tools the user enabled in this chat ("<server>__<tool>"; of CHAT_MCP_SERVERS).'),
        ),
        migrations.RunPython(tool_calls.restore_sqlite_triggers, tool_calls.drop_sqlite_triggers),
    ]
