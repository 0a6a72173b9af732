import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('personal', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Assistant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('slug', models.SlugField(help_text='Its id in links and the API (`assistant:<slug>`): its name and a random part.', max_length=60, unique=True)),
                ('name', models.CharField(help_text="Shown in the sidebar and the chat's header.", max_length=80)),
                ('emoji', models.CharField(blank=True, help_text='Shown before its name.', max_length=16)),
                ('instructions', models.TextField(help_text="Added to the system prompt of its chats, after the chat's own.", max_length=8000)),
                ('model', models.CharField(blank=True, help_text='The model of its chats; empty = the site default.', max_length=100)),
                ('starters', models.JSONField(blank=True, default=list, help_text='Up to 4 starter prompts shown in a new chat with it.')),
                ('tools', models.JSONField(blank=True, default=list, help_text='Per-chat server tools it turns on in its chats (`web_search`).')),
                ('shared', models.BooleanField(default=False, help_text='Any signed-in user with its link may chat with it (never change it).')),
                ('featured', models.BooleanField(default=False, help_text='Set by staff: offered to every user (sidebar and /v1/models).')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('owner', models.ForeignKey(help_text='The user who made it; only they may change it.', on_delete=django.db.models.deletion.CASCADE, related_name='assistants', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name', 'pk'],
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('name', ''), _negated=True), models.Q(('slug', ''), _negated=True)), name='personal_assistant_named')],
            },
        ),
    ]
