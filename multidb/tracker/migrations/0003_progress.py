from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0002_tenant_role_rights"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="progress",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
    ]
