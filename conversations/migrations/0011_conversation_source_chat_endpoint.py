"""The source of chats started by POST /api/chat is named for that endpoint ("chat_endpoint"), not "seed_api"."""

from django.db import migrations, models


def rename_source(old: str, new: str):
    def run(apps, schema_editor):
        apps.get_model("conversations", "Conversation").objects.filter(source=old).update(source=new)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0010_organize'),
    ]

    operations = [
        migrations.AlterField(
            model_name='conversation',
            name='source',
            field=models.CharField(choices=[('web', 'Web'), ('api', 'API'), ('chat_endpoint', '/api/chat'), ('openai_api', '/v1/chat/completions')], default='web', help_text='Where the chat was started.', max_length=20),
        ),
        migrations.RunPython(rename_source("seed_api", "chat_endpoint"), rename_source("chat_endpoint", "seed_api")),
    ]
