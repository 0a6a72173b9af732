from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_signup_modes_and_sso'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='store_chats',
            field=models.BooleanField(default=True, help_text='Off: every call made with this key is answered and counted but kept out of the history, as if it sent store: false (a temporary chat: not listed, deleted after CHAT_TEMPORARY_HOURS). For clients that cannot send store: false, such as a tool\'s background tasks.'),
        ),
    ]
