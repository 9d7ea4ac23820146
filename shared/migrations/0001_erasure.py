import django.utils.timezone
from django.db import migrations, models

from shared.db.grants import runtime_role


def revoke(apps, schema_editor):
    # Whatever rights new tables get by default here: the runtime role reads no erasure.
    schema_editor.execute(
        f"REVOKE ALL ON shared_erasure FROM {schema_editor.quote_name(runtime_role())}"
    )


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Erasure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.SlugField(max_length=63)),
                ("erased_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("counts", models.JSONField()),
                ("digest", models.CharField(max_length=71)),
            ],
            options={
                "ordering": ["-erased_at", "-id"],
            },
        ),
        migrations.RunPython(revoke, migrations.RunPython.noop),
    ]
