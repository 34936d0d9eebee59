from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


class ApiSource(models.Model):
    """Where tools come from: an OpenAPI spec (file or corpus entry) or a live MCP server."""

    class Kind(models.TextChoices):
        OPENAPI = "openapi", "OpenAPI spec"
        MCP_STDIO = "mcp_stdio", "MCP server (stdio)"
        MCP_HTTP = "mcp_http", "MCP server (streamable HTTP)"

    class Status(models.TextChoices):
        PENDING = "pending"
        OK = "ok"
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=255, unique=True)
    location = models.TextField(help_text="File path, command line or URL")
    title = models.CharField(max_length=500, blank=True)
    version = models.CharField(max_length=100, blank=True)
    categories = models.JSONField(default=list, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    operations_count = models.PositiveIntegerField(default=0)
    tools_count = models.PositiveIntegerField(default=0)
    warnings = models.JSONField(default=list, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["openapi", "mcp_stdio", "mcp_http"]), name="apisource_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "ok", "failed"]), name="apisource_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(error=""), name="apisource_failed_has_error"
            ),
        ]
        indexes = [models.Index(fields=["status", "kind"])]

    def __str__(self) -> str:
        return self.name


class TreeNode(models.Model):
    """A node of the two-level MCP tree: a domain, or a long-tail category inside one."""

    class Level(models.TextChoices):
        DOMAIN = "domain"
        CATEGORY = "category"

    level = models.CharField(max_length=16, choices=Level.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    seed_categories = models.JSONField(default=list, blank=True)
    size = models.PositiveIntegerField(default=0)
    # How the name was chosen: corpus-category (APIs.guru categories), categories-theme (what
    # most of a domain's categories are about), keywords (c-TF-IDF), llm.
    name_source = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["level", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(level="domain") & Q(parent__isnull=True))
                | (Q(level="category") & Q(parent__isnull=False)),
                name="treenode_domain_root_category_child",
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(level="domain"), name="treenode_unique_domain_name"
            ),
            models.UniqueConstraint(fields=["parent", "name"], name="treenode_unique_child_name"),
        ]

    def __str__(self) -> str:
        return self.name if self.parent_id is None else f"{self.parent} / {self.name}"


class Tool(models.Model):
    """One MCP tool definition (what ``tools/list`` returns), with its provenance."""

    source = models.ForeignKey(ApiSource, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    input_schema = models.JSONField()
    output_schema = models.JSONField(null=True, blank=True)
    method = models.CharField(max_length=10, blank=True)
    path = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    # The tool's embedding is a ToolVector row (``tool.vector``), not a column here.
    domain = models.ForeignKey(
        TreeNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="domain_tools"
    )
    category = models.ForeignKey(
        TreeNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="tools"
    )
    canonical = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicates",
        help_text="Set when this tool is a duplicate; points at the tool kept for its group.",
    )
    # Curation (synthesis.mcp_tree.curation): null until scored; role-play draws only tools
    # at or above the iteration's threshold.
    usability_score = models.FloatField(null=True, blank=True, db_index=True)
    usability_reasons = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["source", "name"], name="tool_unique_name_per_source"),
            models.CheckConstraint(
                condition=Q(name__regex=r"^[A-Za-z0-9_-]{1,64}$"), name="tool_name_mcp_legal"
            ),
            models.CheckConstraint(
                condition=~Q(canonical=models.F("id")), name="tool_not_own_canonical"
            ),
            models.CheckConstraint(
                condition=Q(usability_score__isnull=True)
                | (Q(usability_score__gte=0.0) & Q(usability_score__lte=1.0)),
                name="tool_usability_score_range",
            ),
        ]
        indexes = [
            models.Index(fields=["domain", "category"]),
            models.Index(fields=["canonical"]),
            GinIndex(fields=["name"], name="tool_name_trgm", opclasses=["gin_trgm_ops"]),
            # The search's name__icontains and description__icontains: Django writes them as
            # UPPER(col) LIKE UPPER('%q%'), which only an index on UPPER(col) serves.
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="tool_name_upper_trgm"),
            GinIndex(OpClass(Upper("description"), name="gin_trgm_ops"), name="tool_description_upper_trgm"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_canonical(self) -> bool:
        return self.canonical_id is None

    def as_mcp(self) -> dict:
        d = {"name": self.name, "description": self.description, "inputSchema": self.input_schema}
        if self.output_schema:
            d["outputSchema"] = self.output_schema
        return d


class ToolVector(models.Model):
    """A tool's embedding, in a narrow table of its own.

    In the tool's row, storing a vector rewrote the whole wide row and added an entry to
    each of its eleven indexes (three trigram GIN indexes among them): 0.5-1 s of the
    database's CPU per 2,048 vectors, taken from the embedder beside it.  Here a chunk is
    one COPY (0.05 s).  A vector is current when its ``recipe`` is the build's and its
    ``content_hash`` is still the tool's, or, where the tool changed, its recipe's text of
    the tool still hashes to ``text_hash`` (then only the content hash is stamped anew);
    any other is embedded again, never mixed in.
    """

    tool = models.OneToOneField(Tool, primary_key=True, on_delete=models.CASCADE, related_name="vector")
    # synthesis.mcp_tree.dedup.RECIPES key the vector was made with.
    recipe = models.CharField(max_length=32)
    # The tool's content hash when its text was embedded.
    content_hash = models.CharField(max_length=64)
    # SHA-256 of the recipe's text of the tool that was embedded ("" for vectors stored
    # before it was recorded; build_tree fills it in).
    text_hash = models.CharField(max_length=64, blank=True, default="")
    # float32 little-endian (all-MiniLM-L6-v2: 384 dimensions)
    vector = models.BinaryField()

    def __str__(self) -> str:
        return f"{self.recipe} vector of tool {self.tool_id}"


class DuplicateLink(models.Model):
    """One deduplication decision: ``tool`` judged (or not) a duplicate of ``canonical``."""

    class Method(models.TextChoices):
        EXACT = "exact"
        SEMANTIC = "semantic"
        JUDGE = "judge"

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="duplicate_links")
    canonical = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="canonical_links")
    method = models.CharField(max_length=16, choices=Method.choices)
    similarity = models.FloatField()
    is_duplicate = models.BooleanField()
    judge_verdict = models.CharField(max_length=16, blank=True)
    rationale = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tool", "canonical"], name="duplicatelink_unique_pair"),
            models.CheckConstraint(condition=~Q(tool=models.F("canonical")), name="duplicatelink_distinct"),
            models.CheckConstraint(
                condition=Q(method__in=["exact", "semantic", "judge"]), name="duplicatelink_method_valid"
            ),
            models.CheckConstraint(
                condition=Q(similarity__gte=-1.0) & Q(similarity__lte=1.0001),
                name="duplicatelink_similarity_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool} ~ {self.canonical} ({self.method}, {self.similarity:.3f})"


class TreeBuild(models.Model):
    """One finished ``build_tree`` run: a fingerprint of what it was built from (every
    tool's id and content hash, the embedding recipe and the run's settings) and what it
    found.  A run whose fingerprint equals the last build's has nothing to do."""

    fingerprint = models.CharField(max_length=64, db_index=True)
    settings = models.JSONField(default=dict)
    stats = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"tree build {self.pk} ({self.fingerprint[:12]})"
