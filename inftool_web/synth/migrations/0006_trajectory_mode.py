"""Trajectory.kind is called mode, as in the API, the exports and synthesis.records."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("synth", "0005_open_runs"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="trajectory", name="trajectory_kind_valid"),
        migrations.RenameField(model_name="trajectory", old_name="kind", new_name="mode"),
        migrations.RemoveIndex(model_name="trajectory", name="synth_traje_iterati_353256_idx"),
        migrations.AddIndex(
            model_name="trajectory",
            index=models.Index(fields=["iteration", "mode"], name="synth_traje_iterati_cf8014_idx"),
        ),
        migrations.AddConstraint(
            model_name="trajectory",
            constraint=models.CheckConstraint(
                condition=models.Q(mode__in=["single", "parallel", "multiple", "irrelevance", "multi_turn"]),
                name="trajectory_mode_valid",
            ),
        ),
    ]
