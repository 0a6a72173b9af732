"""The storage ledger: one row per user with the bytes of their files, filled from the files stored now."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Sum


def fill_from_stored_files(apps, schema_editor):
    Attachment = apps.get_model("conversations", "Attachment")
    StorageUsage = apps.get_model("conversations", "StorageUsage")
    totals = Attachment.objects.values("owner_id").annotate(total=Sum("size")).order_by("owner_id")
    StorageUsage.objects.bulk_create(
        [StorageUsage(user_id=row["owner_id"], bytes=row["total"]) for row in totals], batch_size=1000
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('conversations', '0013_share_link_files'),
    ]

    operations = [
        migrations.CreateModel(
            name='StorageUsage',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('bytes', models.PositiveBigIntegerField(default=0, help_text="Stored and reserved bytes of the user's files.")),
            ],
            options={
                'verbose_name_plural': 'storage usage',
                'constraints': [models.CheckConstraint(condition=models.Q(('bytes__gte', 0)), name='storage_usage_bytes_non_negative')],
            },
        ),
        migrations.RunPython(fill_from_stored_files, migrations.RunPython.noop),
    ]
