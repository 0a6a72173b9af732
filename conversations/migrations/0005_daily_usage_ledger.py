"""The daily token quota counts a usage ledger, not the stored turns.

Summing stored turns gave tokens back when chats were deleted or answers replaced. The ledger starts from the
turns stored so far (per owner and day in the server's time zone); from here on each stored answer adds to it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate


def ledger_from_stored_turns(apps, schema_editor):
    Turn = apps.get_model("conversations", "Turn")
    DailyUsage = apps.get_model("conversations", "DailyUsage")
    rows = (
        Turn.objects.filter(role="assistant")
        .annotate(day=TruncDate("created_at"))
        .values("conversation__owner_id", "day")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), answers=Count("id"))
        .order_by()
    )
    DailyUsage.objects.bulk_create(
        DailyUsage(
            user_id=row["conversation__owner_id"], day=row["day"], prompt_tokens=row["prompt"] or 0,
            completion_tokens=row["completion"] or 0, answers=row["answers"],
        )
        for row in rows.iterator()
    )


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0004_turn_versions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='turn',
            name='quota_reserved',
            field=models.PositiveIntegerField(blank=True, help_text="Tokens held against the owner's daily quota while this answer runs (none without a quota).", null=True),
        ),
        migrations.CreateModel(
            name='DailyUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('prompt_tokens', models.PositiveBigIntegerField(default=0)),
                ('completion_tokens', models.PositiveBigIntegerField(default=0)),
                ('answers', models.PositiveIntegerField(default=0, help_text='Answers stored that day (any outcome).')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'daily usage',
                'ordering': ['user_id', '-day'],
                'constraints': [models.UniqueConstraint(fields=('user', 'day'), name='daily_usage_one_row_per_user_day')],
            },
        ),
        migrations.RunPython(ledger_from_stored_turns, migrations.RunPython.noop),
    ]
