from django.db import migrations, models


class Migration(migrations.Migration):
    """Versions frozen before label sources merged every reader's labels on a series: say so."""

    dependencies = [
        ("datasets", "0002_export_claim_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="label_source",
            field=models.CharField(default="merged", max_length=16),
            preserve_default=False,
        ),
    ]
