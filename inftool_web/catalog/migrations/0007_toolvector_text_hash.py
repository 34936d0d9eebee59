"""A stored vector also records the hash of the text it was made from (#20), so that a tool
whose schema changed but whose embedded text did not keeps its vector.  Vectors stored
before this have none: ``build_tree`` fills it in the first time it reads them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0006_toolvector"),
    ]

    operations = [
        migrations.AddField(
            model_name="toolvector",
            name="text_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
