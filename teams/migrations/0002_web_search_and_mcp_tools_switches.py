"""Two kinds of server tool a group may be allowed or refused on their own: web search and MCP tools (both on, as
server tools allowed them before)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('teams', '0001_groups_policies_audit'),
    ]

    operations = [
        migrations.AlterField(
            model_name='grouppolicy',
            name='server_tools',
            field=models.BooleanField(default=True, help_text="Members' answers may use server tools (calculator, memory, knowledge search...): without it, none, whatever the two switches below say."),
        ),
        migrations.AddField(
            model_name='grouppolicy',
            name='web_search',
            field=models.BooleanField(default=True, help_text='With server tools: members may turn on web search in their chats.'),
        ),
        migrations.AddField(
            model_name='grouppolicy',
            name='mcp_tools',
            field=models.BooleanField(default=True, help_text="With server tools: members may enable the tools of the site's MCP servers.", verbose_name='MCP tools'),
        ),
    ]
