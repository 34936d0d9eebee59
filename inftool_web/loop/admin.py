from django.contrib import admin

from .models import CategoryResult, EvaluationRun, Iteration, ModelCheckpoint, TrainingRun


@admin.register(Iteration)
class IterationAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "status", "input_checkpoint", "output_checkpoint", "created_at"]
    list_filter = ["status"]


@admin.register(ModelCheckpoint)
class ModelCheckpointAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "path", "iteration", "created_at"]
    list_filter = ["kind"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["iteration", "stage", "status", "profile", "num_samples", "finished_at"]
    list_filter = ["stage", "status"]


class CategoryResultInline(admin.TabularInline):
    model = CategoryResult
    extra = 0
    exclude = ["items"]


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ["checkpoint", "iteration", "status", "limit", "overall", "created_at"]
    list_filter = ["status"]
    inlines = [CategoryResultInline]
