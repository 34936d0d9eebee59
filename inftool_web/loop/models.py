from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelCheckpoint(models.Model):
    """A model the Tool Agent can run: the embedded base model or a trained checkpoint."""

    class Kind(models.TextChoices):
        BASE = "base"
        SFT = "sft"
        GRPO = "grpo"
        EXTERNAL = "external"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.TextField(help_text="Local checkpoint directory, or a served model name")
    base = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived")
    iteration = models.ForeignKey(
        "loop.Iteration", null=True, blank=True, on_delete=models.SET_NULL, related_name="checkpoints"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["base", "sft", "grpo", "external"]), name="checkpoint_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Iteration(models.Model):
    """One turn of the loop: synthesize → filter → SFT → GRPO → evaluate → new checkpoint."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SYNTHESIZING = "synthesizing"
        TRAINING = "training"
        EVALUATING = "evaluating"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = ("queued", "synthesizing", "training", "evaluating")

    number = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage_detail = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    progress = models.JSONField(default=dict, blank=True)
    # Runs of the current training or evaluation stage started and never finished (a
    # worker that died mid-stage leaves this raised); reset when a stage hands over.
    stage_open_runs = models.PositiveSmallIntegerField(default=0)
    # What the iteration produced and kept, how it was written and how varied it is
    # (inftool_web/loop/datacard.py); built when synthesis finishes, {} before.
    comparison = models.JSONField(
        default=dict, blank=True,
        help_text="BFCL before/after of this iteration's input and output checkpoints, paired over the same "
                  "items, with bootstrap confidence intervals (training.bfcl_compare)",
    )
    data_card = models.JSONField(default=dict, blank=True)
    data_card_at = models.DateTimeField(null=True, blank=True)
    input_checkpoint = models.ForeignKey(
        ModelCheckpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    output_checkpoint = models.ForeignKey(
        ModelCheckpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "queued", "synthesizing", "training", "evaluating",
                        "succeeded", "failed", "cancelled",
                    ]
                ),
                name="iteration_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(error=""), name="iteration_failed_has_error"
            ),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"Iteration {self.number}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class TrainingRun(models.Model):
    """One SFT or GRPO run of an iteration, with its resolved config and per-sample reward terms."""

    class Stage(models.TextChoices):
        SFT = "sft"
        GRPO = "grpo"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="training_runs")
    stage = models.CharField(max_length=8, choices=Stage.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    profile = models.CharField(max_length=32, default="cpu")
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    reward_terms = models.JSONField(default=list, blank=True)
    num_samples = models.PositiveIntegerField(default=0)
    input_checkpoint = models.ForeignKey(
        ModelCheckpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    output_checkpoint = models.ForeignKey(
        ModelCheckpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["iteration_id", "stage"]
        constraints = [
            models.UniqueConstraint(fields=["iteration", "stage"], name="trainingrun_unique_stage"),
            models.CheckConstraint(condition=Q(stage__in=["sft", "grpo"]), name="trainingrun_stage_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed", "skipped"]),
                name="trainingrun_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage} of iteration {self.iteration_id} ({self.status})"


class EvaluationRun(models.Model):
    """BFCL V3 evaluation of one checkpoint, scored by the official checker."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.CASCADE, related_name="evaluations")
    iteration = models.ForeignKey(
        Iteration, null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations"
    )
    benchmark = models.CharField(max_length=32, default="bfcl_v3")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    subset = models.CharField(
        max_length=32, blank=True, default="",
        help_text="The committed BFCL subset measured (mini-v1: BFCL mini); empty = the whole of BFCL V3",
    )
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Items per category; empty = all")
    seed = models.IntegerField(default=0)
    categories = models.JSONField(default=list, blank=True)
    overall = models.FloatField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                name="evaluationrun_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(overall__isnull=True) | (Q(overall__gte=0.0) & Q(overall__lte=1.0)),
                name="evaluationrun_overall_unit_interval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.benchmark} of checkpoint {self.checkpoint_id} ({self.status})"


class CategoryResult(models.Model):
    """Accuracy of one evaluation on one BFCL category, with the per-item outcomes."""

    evaluation = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    category = models.CharField(max_length=64)
    correct = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    accuracy = models.FloatField()
    items = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["category"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "category"], name="categoryresult_unique"),
            models.CheckConstraint(condition=Q(correct__lte=models.F("total")), name="categoryresult_correct_le_total"),
            models.CheckConstraint(
                condition=Q(accuracy__gte=0.0) & Q(accuracy__lte=1.0), name="categoryresult_accuracy_unit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category}: {self.correct}/{self.total}"
