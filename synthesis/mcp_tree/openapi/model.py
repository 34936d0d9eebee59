"""What conversion produces: tools, their sources and bindings, warnings, options and errors."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REASON_CODES = {
    "unreadable": "the file could not be read",
    "invalid_json": "the text is not valid JSON",
    "invalid_yaml": "the text is not valid YAML",
    "yaml_aliases": "YAML aliases would expand the document too far (a billion-laughs bomb)",
    "not_a_mapping": "the document is not a JSON/YAML object",
    "unsupported_version": "not Swagger 2.0 or OpenAPI 3.x (e.g. Swagger 1.2)",
    "unknown_format": "neither a 'swagger' nor an 'openapi' version field",
    "invalid_paths": "'paths' is not an object",
    "no_operations": "the spec declares no operations",
    "no_valid_operations": "every operation was malformed",
    "conversion_failed": "an unexpected error while converting",
}
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


# Bumped whenever a change to the converter changes its output for the same spec, so that
# ingestion converts specs again instead of skipping them as unchanged.
# 2: credentials declared as plain parameters are left out
# 3: the client sends Azure's api-version, version headers, required one-value parameters (AWS's
#    Action and Version, X-Amz-Target) and OData's @odata.type; AWS signing headers, User-Agent,
#    optional If-Match and header user names are left out (the api-version pinning of 2 shipped
#    without a bump, so specs ingested before it are converted again too)
# 4: request-tracing and idempotency headers (X-Request-Id, client-request-id, correlation ids,
#    Idempotency-Key) are left to the client
CONVERTER_VERSION = "4"


def spec_digest(raw: bytes) -> str:
    """What ingestion compares to skip an unchanged spec: the file and the converter version."""

    return hashlib.sha256(raw + b"\0converter=" + CONVERTER_VERSION.encode()).hexdigest()


class SpecError(Exception):
    """A spec that cannot be converted; ``reason_code`` is one of :data:`REASON_CODES`."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True, slots=True)
class ConversionWarning:
    operation: str  # "GET /pets/{id}"; "" for the spec as a whole
    code: str  # unresolved_ref, external_ref, invalid_pattern, parameter_skipped, ...
    message: str


@dataclass(frozen=True, slots=True)
class SourceInfo:
    api_title: str
    api_version: str
    spec_version: str  # "2.0", "3.0.1", "3.1.0"
    categories: tuple[str, ...] = ()
    provider: str = ""  # info.x-providerName (APIs.guru)
    service: str = ""  # info.x-serviceName
    base_url: str = ""
    source_name: str = ""  # what the caller called it: a corpus path, an upload name


@dataclass(frozen=True, slots=True)
class ParamBinding:
    """Where one ``inputSchema`` property goes in the HTTP request."""

    arg: str  # property name in inputSchema
    location: str  # path | query | header | cookie | formData | body
    name: str  # the HTTP name; for location "body", the body field ("" = the whole body)
    required: bool = False
    value: Any = None  # for a parameter the client fills in (arg ""): the value it sends


@dataclass(slots=True)
class ToolDef:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    method: str  # upper case
    path: str
    source: SourceInfo
    operation_id: str = ""
    summary: str = ""
    tags: tuple[str, ...] = ()
    deprecated: bool = False
    bindings: tuple[ParamBinding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready plain data (schemas are shared, not copied)."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "method": self.method,
            "path": self.path,
            "operation_id": self.operation_id,
            "summary": self.summary,
            "tags": list(self.tags),
            "deprecated": self.deprecated,
            "bindings": [dataclasses.asdict(b) for b in self.bindings],
            "source": {
                **dataclasses.asdict(self.source),
                "categories": list(self.source.categories),
            },
        }

    def to_mcp(self) -> dict[str, Any]:
        """The MCP ``Tool`` definition."""
        tool: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.output_schema is not None:
            tool["outputSchema"] = self.output_schema
        m = self.method
        tool["annotations"] = {
            "title": self.summary or self.name,
            "readOnlyHint": m in ("GET", "HEAD", "OPTIONS"),
            "destructiveHint": m == "DELETE",
            "idempotentHint": m in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"),
            "openWorldHint": True,
        }
        return tool


@dataclass(slots=True)
class ConversionResult:
    source: SourceInfo
    tools: list[ToolDef]
    warnings: list[ConversionWarning]
    operations: int  # operations declared in the spec
    skipped: int  # operations dropped (each with an "operation_skipped" warning)


@dataclass(slots=True)
class ConvertOptions:
    max_ref_depth: int = field(
        default=3, metadata={"help": "references inlined along one path in inputSchema"}
    )
    max_output_ref_depth: int = field(default=2, metadata={"help": "the same for outputSchema"})
    max_schema_nodes: int = field(
        default=400,
        metadata={"help": "schemas bigger than this are rebuilt one reference level shallower"},
    )
    max_description_chars: int = field(default=1024, metadata={"help": "cap on tool descriptions"})
    max_field_description_chars: int = field(
        default=300, metadata={"help": "cap on property descriptions"}
    )
    max_nesting: int = field(default=48, metadata={"help": "inline nesting beyond this is stubbed"})
    drop_auth_params: bool = field(
        default=True,
        metadata={"help": "leave out API-key parameters and Google's standard query parameters"},
    )
    pin_api_version: bool = field(
        default=True,
        metadata={"help": "an 'api-version' query parameter is sent by the client with the spec's "
                          "info.version (Azure: 2023-09-01), not asked of the caller"},
    )
    pin_constants: bool = field(
        default=True,
        metadata={"help": "a required parameter that allows one value (an enum of one, or const: AWS's "
                          "Action and Version) is sent by the client, not asked of the caller"},
    )

    def __post_init__(self) -> None:
        if self.max_ref_depth < 1 or self.max_output_ref_depth < 1:
            raise ValueError(
                "max_ref_depth and max_output_ref_depth must be >= 1 (the top-level body is a $ref)"
            )
        if self.max_schema_nodes < 1:
            raise ValueError("max_schema_nodes must be >= 1")
