"""Tool embeddings move out of the tool's row into ``catalog_toolvector`` (#20): the vectors
stored so far move with it, labelled with their tool's current content hash."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0005_tool_embedding_recipe_treebuild"),
    ]

    operations = [
        migrations.CreateModel(
            name="ToolVector",
            fields=[
                ("tool", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                              related_name="vector", serialize=False, to="catalog.tool")),
                ("recipe", models.CharField(max_length=32)),
                ("content_hash", models.CharField(max_length=64)),
                ("vector", models.BinaryField()),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO catalog_toolvector (tool_id, recipe, content_hash, vector) "
            "SELECT id, embedding_recipe, content_hash, embedding FROM catalog_tool "
            "WHERE embedding IS NOT NULL AND embedding_recipe <> ''",
            reverse_sql="UPDATE catalog_tool AS t SET embedding = v.vector, embedding_recipe = v.recipe "
                        "FROM catalog_toolvector AS v WHERE v.tool_id = t.id AND v.content_hash = t.content_hash",
        ),
        migrations.RemoveField(model_name="tool", name="embedding"),
        migrations.RemoveField(model_name="tool", name="embedding_recipe"),
    ]
