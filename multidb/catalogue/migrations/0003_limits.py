from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0002_tenant_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="connection_limit",
            field=models.IntegerField(db_default=-1, default=-1),
        ),
        migrations.AddField(
            model_name="tenant",
            name="statement_timeout",
            field=models.PositiveIntegerField(db_default=5000, default=5000),
        ),
    ]
