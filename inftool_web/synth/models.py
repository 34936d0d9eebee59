from django.conf import settings
from django.db import models
from django.db.models import Q

from synthesis import records


class Persona(models.Model):
    """A simulated user: who they are and how they talk, driving the User Simulator."""

    class Origin(models.TextChoices):
        SEED = "seed"
        GENERATED = "generated"

    name = models.CharField(max_length=200)
    role = models.CharField(max_length=200, blank=True)
    background = models.TextField(blank=True)
    style = models.TextField(blank=True)
    goals = models.JSONField(default=list, blank=True)
    domain = models.ForeignKey(
        "catalog.TreeNode", null=True, blank=True, on_delete=models.SET_NULL, related_name="personas"
    )
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.GENERATED)
    content_hash = models.CharField(max_length=64, unique=True)
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})" if self.role else self.name

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "background": self.background,
            "style": self.style,
            "goals": self.goals,
        }


# A trajectory in one of these states has finished for good (kept, dropped or failed).
TERMINAL = ("done", "rejected", "failed")


class Trajectory(models.Model):
    """One synthesized conversation of one iteration, with its references and verdict."""

    class Mode(models.TextChoices):  # synthesis.records.Mode
        SINGLE = records.Mode.SINGLE
        PARALLEL = records.Mode.PARALLEL
        MULTIPLE = records.Mode.MULTIPLE
        IRRELEVANCE = records.Mode.IRRELEVANCE
        MULTI_TURN = records.Mode.MULTI_TURN, records.Mode.MULTI_TURN.label

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        VERIFYING = "verifying"
        DONE = "done"
        REJECTED = "rejected"  # rejected during synthesis (reflection could not repair)
        FAILED = "failed"  # an error, not a judgement; see ``error``

    class Difficulty(models.TextChoices):
        EASY = records.Difficulty.EASY
        HARD = records.Difficulty.HARD

    class Verdict(models.TextChoices):
        ACCEPTED = records.Verdict.ACCEPTED
        REJECTED = records.Verdict.REJECTED

    iteration = models.ForeignKey("loop.Iteration", on_delete=models.CASCADE, related_name="trajectories")
    # Position within the iteration; with ``iteration`` it makes task re-delivery idempotent.
    seq = models.PositiveIntegerField()
    mode = models.CharField(max_length=16, choices=Mode.choices)
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL)
    domain = models.ForeignKey(
        "catalog.TreeNode", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.ForeignKey(
        "catalog.TreeNode", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tools = models.ManyToManyField("catalog.Tool", blank=True, related_name="trajectories")
    offered_tools = models.JSONField(default=list, help_text="MCP tool definitions as offered")
    goal = models.TextField(blank=True)
    reference_calls = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    score = models.FloatField(null=True, blank=True, help_text="Execution-consistency score in [0, 1]")
    score_detail = models.JSONField(default=dict, blank=True)
    difficulty = models.CharField(max_length=8, choices=Difficulty.choices, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    # Audit overrides the verifiers: "" (not audited), "accept", "reject", "flag".
    audit_decision = models.CharField(max_length=8, blank=True)
    repaired = models.BooleanField(default=False)
    num_turns = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    engine_state = models.JSONField(default=dict, blank=True, help_text="What a resumed task needs")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Runs started and never finished: a worker that died mid-run leaves this raised.
    open_runs = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["iteration_id", "seq"]
        verbose_name_plural = "trajectories"
        constraints = [
            models.UniqueConstraint(fields=["iteration", "seq"], name="trajectory_unique_seq"),
            models.CheckConstraint(
                condition=Q(mode__in=["single", "parallel", "multiple", "irrelevance", "multi_turn"]),
                name="trajectory_mode_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "running", "verifying", "done", "rejected", "failed"]
                ),
                name="trajectory_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | (Q(score__gte=0.0) & Q(score__lte=1.0)),
                name="trajectory_score_unit_interval",
            ),
            models.CheckConstraint(
                condition=Q(difficulty__in=["", "easy", "hard"]), name="trajectory_difficulty_valid"
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["", "accepted", "rejected"]), name="trajectory_verdict_valid"
            ),
            models.CheckConstraint(
                condition=Q(audit_decision__in=["", "accept", "reject", "flag"]),
                name="trajectory_audit_valid",
            ),
            # A trajectory is only "done" with a verdict: no half-finished row marked done.
            models.CheckConstraint(
                condition=~Q(status="done") | ~Q(verdict=""), name="trajectory_done_has_verdict"
            ),
        ]
        indexes = [
            # Pages and exports of one iteration walk it in id order (keyset pagination).
            models.Index(fields=["iteration", "id"], name="synth_traj_iteration_id_idx"),
            models.Index(fields=["iteration", "mode"]),
            models.Index(fields=["iteration", "status"]),
            models.Index(fields=["iteration", "verdict"]),
            models.Index(fields=["difficulty"]),
            models.Index(fields=["domain"]),
            models.Index(fields=["audit_decision"]),
            models.Index(fields=["-created_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.mode} (iteration {self.iteration_id})"

    @property
    def effective_verdict(self) -> str:
        """The verdict that exports and training use: an audit beats the verifiers."""
        verdict = records.effective_verdict(self.verdict, self.audit_decision)
        return verdict.value if verdict else ""


class TrajectoryStep(models.Model):
    """The raw log of a trajectory: every step the engine emitted, in order, as it was emitted.

    Messages, reflections and votes are also stored in their own tables for reading; this
    log is what a retried task replays to resume exactly where a killed one stopped.
    """

    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=16)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trajectory_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["trajectory", "index"], name="trajectorystep_unique_index"),
            models.CheckConstraint(
                condition=Q(kind__in=["scenario", "message", "reflection", "vote", "finish"]),
                name="trajectorystep_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"trajectory {self.trajectory_id} step {self.index} ({self.kind})"


class Message(models.Model):
    """One stored step of a conversation, in order."""

    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"
        TOOL = "tool"

    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="messages")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    agent = models.CharField(max_length=32, blank=True, help_text="user_simulator, tool_agent, server_simulator")
    content = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    tool_results = models.JSONField(default=list, blank=True)
    tool_call_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=100, blank=True, help_text="Tool name of a tool result")
    mcp = models.JSONField(null=True, blank=True, help_text="The MCP JSON-RPC form (tools/call or its result)")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trajectory_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["trajectory", "index"], name="message_unique_index"),
            models.CheckConstraint(
                condition=Q(role__in=["system", "user", "assistant", "tool"]), name="message_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trajectory_id}:{self.index} {self.role}"


class Reflection(models.Model):
    """A self-reflection check on one agent step: what was wrong and what was done about it."""

    class Action(models.TextChoices):
        OK = "ok"
        REPAIRED = "repaired"
        REJECTED = "rejected"

    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="reflections")
    index = models.PositiveIntegerField()
    step = models.PositiveIntegerField(help_text="Index of the message the check was about")
    problem = models.CharField(max_length=64, blank=True, help_text="e.g. unknown_tool, schema_invalid")
    detail = models.TextField(blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    attempts = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trajectory_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["trajectory", "index"], name="reflection_unique_index"),
            models.CheckConstraint(
                condition=Q(action__in=["ok", "repaired", "rejected"]), name="reflection_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"trajectory {self.trajectory_id} step {self.index}: {self.action}"


class VerifierVote(models.Model):
    """One verifier's vote in one round; round 0 is the first vote, later rounds negotiate."""

    class Vote(models.TextChoices):
        ACCEPT = "accept"
        REJECT = "reject"

    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="votes")
    verifier = models.CharField(max_length=64)
    backend = models.CharField(max_length=200, blank=True)
    round = models.PositiveIntegerField(default=0)
    vote = models.CharField(max_length=8, choices=Vote.choices)
    perspective = models.CharField(max_length=200, blank=True)
    rationale = models.TextField(blank=True)
    abstained = models.BooleanField(
        default=False, help_text="The vote's rationale was unusable (e.g. it repeats itself): not counted"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trajectory_id", "round", "verifier"]
        constraints = [
            models.UniqueConstraint(fields=["trajectory", "verifier", "round"], name="vote_unique_per_round"),
            models.CheckConstraint(condition=Q(vote__in=["accept", "reject"]), name="vote_value_valid"),
        ]

    def __str__(self) -> str:
        return f"trajectory {self.trajectory_id} {self.verifier} round {self.round}: {self.vote}"


class AuditDecision(models.Model):
    """A reviewer's decision on a sampled trajectory; the latest one overrides the verifiers."""

    class Decision(models.TextChoices):
        ACCEPT = records.Audit.ACCEPT
        REJECT = records.Audit.REJECT
        FLAG = records.Audit.FLAG

    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="audits")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audits")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["accept", "reject", "flag"]), name="audit_decision_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"trajectory {self.trajectory_id}: {self.decision}"
