"""REST endpoints: parse input, call one selector or service, shape the output."""

from __future__ import annotations

import dataclasses

from django.db.models import F
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from inftool_web.loop.datacard import data_card_get, data_card_markdown
from inftool_web.loop.iteration_config import ConfigError
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_cancel, iteration_launch

from . import selectors
from .exports import FORMATS, HF_FORMAT, export_hf_archive, export_lines
from .pagination import IdCursorPages, LimitOffsetPages
from .permissions import IsOperator, IsViewer
from .streaming import streaming_response


class BaseApi(APIView):
    # Token first so an anonymous client is told how to authenticate (401 + WWW-Authenticate).
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsViewer]  # a signed-in user without a role reads nothing
    # How a list endpoint pages; drf-spectacular documents its parameters and response from it.
    pagination_class = LimitOffsetPages


def paginate(*, queryset, serializer_class, request, view) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def parse_trajectory_filters(params) -> selectors.TrajectoryFilters:
    try:
        return selectors.TrajectoryFilters.from_params(params)
    except selectors.FilterError as exc:
        raise ValidationError(exc.errors) from None


FILTER_PARAMETERS = [
    OpenApiParameter("iteration", int, description="Iteration id"),
    OpenApiParameter("mode", str, enum=list(selectors.MODES)),
    OpenApiParameter("domain", str, description="Domain name or id"),
    OpenApiParameter("difficulty", str, enum=list(selectors.DIFFICULTIES)),
    OpenApiParameter("verdict", str, enum=list(selectors.VERDICTS),
                     description="Effective verdict: a human audit overrides the verifiers"),
    OpenApiParameter("audited", bool),
]


@extend_schema(exclude=True)
class NotFoundApi(BaseApi):
    """Any other path under /api/: a JSON 404 like the API's own (Django's is an HTML page),
    after the same sign-in check, so an anonymous client learns nothing of what exists."""

    def get(self, request, *args, **kwargs):
        raise NotFound()

    post = put = patch = delete = get


# ------------------------------------------------------------------ tools, personas
class ToolListApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Tool"

        id = serializers.IntegerField()
        name = serializers.CharField()
        description = serializers.CharField()
        source = serializers.CharField(source="source.name")
        domain = serializers.CharField(source="domain.name", default=None, allow_null=True)
        category = serializers.CharField(source="category.name", default=None, allow_null=True)
        canonical = serializers.IntegerField(source="canonical_id", allow_null=True)
        input_schema = serializers.JSONField()
        output_schema = serializers.JSONField(allow_null=True)
        usability_score = serializers.FloatField(allow_null=True, help_text="0-1; null until scored")
        usability_reasons = serializers.ListField(
            child=inline_serializer("UsabilityReason", fields={
                "code": serializers.CharField(), "message": serializers.CharField(),
                "weight": serializers.FloatField(),
            }),
            help_text="Why the score is below 1 (stable codes; see manage.py curate_tools)",
        )

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Search name (trigram) and description"),
                    OpenApiParameter("domain", str), OpenApiParameter("category", str),
                    OpenApiParameter("min_score", {"type": "number", "minimum": 0, "maximum": 1},
                                     description="Only tools whose usability score is at least this (0-1)")],
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        try:
            min_score = selectors.parse_min_score(request.query_params.get("min_score"))
        except selectors.FilterError as exc:
            raise ValidationError(exc.errors) from None
        qs = selectors.tool_list(q=request.query_params.get("q", ""),
                                 domain=request.query_params.get("domain", ""),
                                 category=request.query_params.get("category", ""),
                                 min_score=min_score)
        return paginate(queryset=qs, serializer_class=self.OutputSerializer, request=request, view=self)


class ToolDetailApi(BaseApi):
    @extend_schema(responses=ToolListApi.OutputSerializer)
    def get(self, request, pk: int):
        tool = get_object_or_404(selectors.tool_list(), pk=pk)
        return Response(ToolListApi.OutputSerializer(tool).data)


class PersonaListApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Persona"

        id = serializers.IntegerField()
        name = serializers.CharField()
        role = serializers.CharField()
        background = serializers.CharField()
        style = serializers.CharField()
        goals = serializers.JSONField()
        domain = serializers.CharField(source="domain.name", default=None, allow_null=True)
        origin = serializers.CharField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        return paginate(queryset=selectors.persona_list(), serializer_class=self.OutputSerializer,
                        request=request, view=self)


# ------------------------------------------------------------------ iterations
class IterationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    stage_detail = serializers.CharField()
    error = serializers.CharField()
    config = serializers.JSONField()
    progress = serializers.JSONField()
    input_checkpoint = serializers.IntegerField(source="input_checkpoint_id", allow_null=True)
    output_checkpoint = serializers.IntegerField(source="output_checkpoint_id", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class StrictCharField(serializers.CharField):
    """A JSON string; DRF's CharField would also take a number or a boolean and stringify it."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IterationListApi(BaseApi):
    class InputSerializer(serializers.Serializer):
        name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
        config = serializers.DictField(help_text="IterationConfig fields; omitted ones take their defaults")

    # The config is a JSON object, which a form cannot carry.
    parser_classes = [p for p in api_settings.DEFAULT_PARSER_CLASSES if p.media_type == "application/json"]

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsOperator()]
        return super().get_permissions()

    @extend_schema(responses=IterationOutputSerializer(many=True))
    def get(self, request):
        return paginate(queryset=selectors.iteration_list(), serializer_class=IterationOutputSerializer,
                        request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: IterationOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            iteration = iteration_launch(config=data.validated_data["config"], created_by=request.user,
                                         name=data.validated_data["name"])
        except ConfigError as exc:
            raise ValidationError({"config": exc.errors}) from None
        return Response(IterationOutputSerializer(iteration).data, status=status.HTTP_201_CREATED)


class IterationDetailApi(BaseApi):
    @extend_schema(responses=IterationOutputSerializer)
    def get(self, request, pk: int):
        return Response(IterationOutputSerializer(get_object_or_404(Iteration, pk=pk)).data)


class IterationCancelApi(BaseApi):
    permission_classes = [IsAuthenticated, IsOperator]

    @extend_schema(request=None, responses=IterationOutputSerializer)
    def post(self, request, pk: int):
        iteration = iteration_cancel(iteration=get_object_or_404(Iteration, pk=pk))
        return Response(IterationOutputSerializer(iteration).data)


class MarkdownCardRenderer(BaseRenderer):
    """A data card as a Hugging Face dataset card (``?format=md`` or ``Accept: text/markdown``)."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data_card_markdown(data).encode(self.charset)


class IterationCardApi(BaseApi):
    """The iteration's data card: counts, rates, where texts came from, value checks,
    diversity, contamination, models per role and the audit agreement (as of now)."""

    renderer_classes = [JSONRenderer, MarkdownCardRenderer]

    @extend_schema(
        operation_id="iterations_card",
        parameters=[OpenApiParameter("format", str, enum=["json", "md"],
                                     description="json (default), or md for the Hugging Face dataset card")],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/markdown"): OpenApiTypes.STR},
        description="404 until the card is built (when the iteration's synthesis finishes, or by "
                    "`manage.py data_card --iteration N`).",
    )
    def get(self, request, pk: int):
        card = data_card_get(iteration=get_object_or_404(Iteration, pk=pk))
        if not card:
            raise NotFound("This iteration has no data card yet: it is built when its synthesis finishes.")
        return Response(card)

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors stay JSON, as the schema documents them, whatever format was asked for.
        if response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


# ------------------------------------------------------------------ trajectories
class TrajectoryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    iteration = serializers.IntegerField(source="iteration_id")
    seq = serializers.IntegerField()
    mode = serializers.CharField(source="kind")
    status = serializers.CharField()
    domain = serializers.IntegerField(source="domain_id", allow_null=True)
    category = serializers.IntegerField(source="category_id", allow_null=True)
    score = serializers.FloatField(allow_null=True)
    difficulty = serializers.CharField()
    verdict = serializers.CharField()
    audit_decision = serializers.CharField()
    effective_verdict = serializers.CharField()
    repaired = serializers.BooleanField()
    num_turns = serializers.IntegerField()
    tokens = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_tokens(self, obj) -> int:
        return obj.prompt_tokens + obj.completion_tokens


# The list reads these columns as plain values, not model instances, and shapes each row
# with ``trajectory_list_item``: the same output as TrajectoryOutputSerializer (a test holds
# them equal) at a fraction of the cost per row.
TRAJECTORY_LIST_COLUMNS = (
    "id", "iteration_id", "seq", "kind", "status", "domain_id", "category_id", "score", "difficulty", "verdict",
    "audit_decision", "effective", "repaired", "num_turns", "tokens", "created_at",
)
_DATETIME = serializers.DateTimeField()


def trajectory_list_item(row: dict) -> dict:
    return {
        "id": row["id"],
        "iteration": row["iteration_id"],
        "seq": row["seq"],
        "mode": row["kind"],
        "status": row["status"],
        "domain": row["domain_id"],
        "category": row["category_id"],
        "score": row["score"],
        "difficulty": row["difficulty"],
        "verdict": row["verdict"],
        "audit_decision": row["audit_decision"],
        "effective_verdict": row["effective"],
        "repaired": row["repaired"],
        "num_turns": row["num_turns"],
        "tokens": row["tokens"],
        "created_at": _DATETIME.to_representation(row["created_at"]),
    }


class TrajectoryListApi(BaseApi):
    pagination_class = IdCursorPages

    @extend_schema(parameters=FILTER_PARAMETERS, responses=TrajectoryOutputSerializer(many=True))
    def get(self, request):
        qs = selectors.trajectory_list(filters=parse_trajectory_filters(request.query_params))
        rows = qs.annotate(effective=selectors.effective_verdict_value(),
                           tokens=F("prompt_tokens") + F("completion_tokens")).values(*TRAJECTORY_LIST_COLUMNS)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([trajectory_list_item(row) for row in page])


class TrajectoryDetailApi(BaseApi):
    class OutputSerializer(TrajectoryOutputSerializer):
        class Meta:
            ref_name = "TrajectoryDetail"

        class MessageSerializer(serializers.Serializer):
            index = serializers.IntegerField()
            role = serializers.CharField()
            agent = serializers.CharField()
            content = serializers.CharField()
            tool_calls = serializers.JSONField()
            tool_results = serializers.JSONField()

        goal = serializers.CharField()
        offered_tools = serializers.JSONField()
        reference_calls = serializers.JSONField()
        score_detail = serializers.JSONField()
        messages = MessageSerializer(many=True, source="messages.all")

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        try:
            trajectory = selectors.trajectory_get(pk=pk)
        except selectors.Trajectory.DoesNotExist:
            return Response({"detail": "No such trajectory."}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer(trajectory).data)


# ------------------------------------------------------------------ evaluations
class EvaluationListApi(BaseApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Evaluation"

        class ResultSerializer(serializers.Serializer):
            category = serializers.CharField()
            correct = serializers.IntegerField()
            total = serializers.IntegerField()
            accuracy = serializers.FloatField()

        id = serializers.IntegerField()
        checkpoint = serializers.CharField(source="checkpoint.name")
        iteration = serializers.IntegerField(source="iteration_id", allow_null=True)
        benchmark = serializers.CharField()
        status = serializers.CharField()
        limit = serializers.IntegerField(allow_null=True)
        overall = serializers.FloatField(allow_null=True)
        results = ResultSerializer(many=True, source="results.all")
        created_at = serializers.DateTimeField()

    @extend_schema(parameters=[OpenApiParameter("iteration", {"type": "integer", "minimum": 0}, description="Iteration id")],
                   responses=OutputSerializer(many=True))
    def get(self, request):
        raw = request.query_params.get("iteration")
        if raw and not (raw.isascii() and raw.isdigit()):
            raise ValidationError({"iteration": f"{raw!r} is not an iteration id (an integer)"})
        qs = selectors.evaluation_list(iteration=int(raw) if raw else None)
        return paginate(queryset=qs, serializer_class=self.OutputSerializer, request=request, view=self)


# ------------------------------------------------------------------ exports
EXPORT_FORMATS = (*FORMATS, HF_FORMAT)


def _query_number(request, name: str, cast, default, check, rule: str):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = cast(raw)
    except ValueError:
        value = None
    if value is None or not check(value):
        raise ValidationError({name: f"{raw!r} is not {rule}"})
    return value


class ExportListApi(BaseApi):
    @extend_schema(operation_id="exports_formats", responses=inline_serializer("ExportFormats", {"formats": serializers.DictField()}))
    def get(self, request):
        base = request.build_absolute_uri("/api/exports/")
        return Response({"formats": {fmt: f"{base}{fmt}/" for fmt in EXPORT_FORMATS}})


class ExportApi(BaseApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(EXPORT_FORMATS),
                             description="Export format; hf: a zip of a Hugging Face dataset folder"),
            *FILTER_PARAMETERS,
            OpenApiParameter("include", str, enum=["accepted", "all"],
                             description="Without a verdict filter: accepted (default) exports effective-accepted "
                                         "trajectories only, all exports every one"),
            OpenApiParameter("seed", int, description="hf: seed of the train/validation split (default 0)"),
            OpenApiParameter("validation_fraction",
                             {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": True},
                             description="hf: share of trajectories in validation, in [0, 1) (default 0.1)"),
        ],
        description="JSONL, streamed. Filtered by one iteration, the `Link` header (rel=describedby) points at "
                    "that iteration's data card (`/api/iterations/{id}/card/?format=md`), the README.md to keep "
                    "beside the file. `hf`: a zip of a Hugging Face dataset folder (parquet train/validation "
                    "splits by trajectory and its README.md card), which `datasets.load_dataset` loads once "
                    "unpacked.",
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR, (200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request, fmt: str):
        if fmt not in EXPORT_FORMATS:
            raise ValidationError({"format": f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}"})
        include = request.query_params.get("include") or "accepted"
        if include not in ("accepted", "all"):
            raise ValidationError({"include": f"unknown value {include!r}; valid: accepted, all"})
        filters = parse_trajectory_filters(request.query_params)
        if include == "accepted" and filters.verdict is None:
            filters = dataclasses.replace(filters, verdict="accepted")
        # Only hf uses these, but a bad value is a bad request whatever the format.
        seed = _query_number(request, "seed", int, 0, lambda v: True, "an integer")
        share = _query_number(request, "validation_fraction", float, 0.1, lambda v: 0 <= v < 1,
                              "a number in [0, 1)")
        qs = selectors.trajectory_list(filters=filters)
        if fmt == HF_FORMAT:
            described = {k: v for k, v in request.query_params.items() if k in selectors.TrajectoryFilters.PARAMS}
            return streaming_response(request, export_hf_archive(qs, filters=described, seed=seed,
                                                                 validation_fraction=share),
                                      content_type="application/zip", filename="inftool-hf.zip")
        response = streaming_response(request, export_lines(qs, fmt), content_type="application/x-ndjson",
                                      filename=f"inftool-{fmt}.jsonl")
        if filters.iteration is not None and filters.iteration >= 0:  # an id, possibly of no iteration
            # The data card goes beside the export: as a link (the body is the JSONL stream).
            card = request.build_absolute_uri(reverse("api:iteration-card", args=[filters.iteration]))
            response["Link"] = f'<{card}?format=md>; rel="describedby"; type="text/markdown"'
        return response
