"""OpenAPI / Swagger to MCP tool conversion.

Reads Swagger 2.0 and OpenAPI 3.0 / 3.1 documents (JSON or YAML, a file, text or an
already-parsed dict) and turns every operation into an MCP tool: a legal unique name, a
cleaned description, one ``inputSchema`` gathering path, query, header and cookie
parameters, form fields and the request body, and an ``outputSchema`` from the first
2xx JSON response.  Every emitted schema is valid JSON Schema 2020-12 whose patterns
compile with Python's ``re``.

Public API
----------
``load_spec(source) -> dict``
    Parse a spec from a path, JSON/YAML text, bytes or a dict; raises :class:`SpecError`.
``convert_spec(source, *, options=None, source_name="") -> ConversionResult``
    Convert a whole spec.  Raises :class:`SpecError` (``reason_code`` in
    :data:`REASON_CODES`) for a malformed or unsupported spec; otherwise returns every
    convertible operation as a :class:`ToolDef`, with per-operation
    :class:`ConversionWarning` s for what was dropped or repaired.
``ConvertOptions``
    Limits: how deep ``$ref`` s are inlined, the largest schema kept, description caps.
``ToolDef.to_dict() -> dict``
    Every field as JSON-ready plain data (for storage).
``ToolDef.to_mcp() -> dict``
    The MCP ``Tool`` dict (``name``, ``description``, ``inputSchema``, ``outputSchema``,
    ``annotations``).

Schemas are fully inlined (no ``$ref``).  A ``$ref`` that recurs on its own path, or
lies deeper than ``max_ref_depth`` references, becomes a stub such as
``{"type": "object", "description": "A microsoft.graph.user (nested fields omitted)."}``;
a schema bigger than ``max_schema_nodes`` is rebuilt with a shallower depth.  Resolved
subschemas are shared between tools: treat ``input_schema`` / ``output_schema`` as
read-only (serialise them, don't mutate them).

The package has one module per step: :mod:`.load` reads a document, :mod:`.refs` resolves
its ``$ref`` s, :mod:`.schemas` converts schema objects, :mod:`.operations` turns operations
into tools; :mod:`.model` holds what they produce and :mod:`.text` the descriptions and names.
"""

from .load import MAX_YAML_ALIASES, MAX_YAML_NODES, load_spec
from .model import (
    CONVERTER_VERSION,
    HTTP_METHODS,
    REASON_CODES,
    TOOL_NAME_RE,
    ConversionResult,
    ConversionWarning,
    ConvertOptions,
    ParamBinding,
    SourceInfo,
    SpecError,
    ToolDef,
    spec_digest,
)
from .operations import convert_spec
from .text import clean_text, fallback_description, tool_name

__all__ = [
    "CONVERTER_VERSION",
    "HTTP_METHODS",
    "MAX_YAML_ALIASES",
    "MAX_YAML_NODES",
    "REASON_CODES",
    "TOOL_NAME_RE",
    "ConversionResult",
    "ConversionWarning",
    "ConvertOptions",
    "ParamBinding",
    "SourceInfo",
    "SpecError",
    "ToolDef",
    "clean_text",
    "convert_spec",
    "fallback_description",
    "load_spec",
    "spec_digest",
    "tool_name",
]
