"""Operations to tools: parameters, bodies, outputs and the whole-spec conversion."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .load import load_spec
from .model import (
    HTTP_METHODS,
    ConversionResult,
    ConversionWarning,
    ConvertOptions,
    ParamBinding,
    SourceInfo,
    SpecError,
    ToolDef,
)
from .schemas import COMBINATORS, SchemaConverter
from .text import clean_text, fallback_description, tool_name, unique_name

# Headers that belong to transport or auth, not to what the caller decides.
_SKIPPED_HEADERS = frozenset({"accept", "content-type", "authorization", "content-length", "user-agent"})
# Conditional-request headers carry an ETag or a date from an earlier response: the client's
# concurrency control, not the caller's request (Graph offers If-Match on 4,535 tools).  Left
# out where optional; a required one stays.
_CONDITIONAL_HEADERS = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"})
# Credentials declared as plain parameters instead of security schemes (``x-tyk-authorization``,
# ``Ocp-Apim-Subscription-Key``, ``?api_key=``): the MCP server holds them, the caller does not.
# In a header, a user name, a client id or an integration code is a credential too (Autotask
# asks every one of its 2,958 operations for ApiIntegrationCode, UserName and Secret).
_CREDENTIAL_HEADER_RX = re.compile(
    r"auth|api[-_]?key|subscription[-_]?key|token|secret|password|session|user[-_]?name|client[-_]?id"
    r"|integration[-_]?code|credential|signature|impersonation|[-_](user|application|app|access|consumer|partner|developer)[-_]?key$",
    re.I,
)
_CREDENTIAL_QUERY = frozenset({"api_key", "apikey", "api-key", "access_token", "auth_token", "client_secret"})
# AWS Signature Version 4: the client signs every request with the MCP server's keys and
# these headers carry the signature.  Every AWS spec in the corpus declares them on every
# operation (15,402 tools), where a caller would have to make up a date and a signature.
_SIGNING_HEADER_RX = re.compile(
    r"^x-amz-(content-sha256|date|algorithm|credential|signature|signedheaders|security-token)$", re.I
)
# Request tracing and retry safety: an id the client makes up for each request (X-Request-Id,
# client-request-id, a correlation id, a trace span, an idempotency key), never something the
# caller decides.  In headers only: a ``requestId`` in a path or query names a resource.  On the
# corpus, 1,256 tools asked the caller for one ("… for x request 27b0051828188f715ce").
_TRACING_HEADER_RX = re.compile(
    r"^(x-)?([a-z0-9]+[-_.])*(client[-_]?)?(request|correlation|trace|tracking)[-_]?id$"
    r"|^(return-client-request-id|traceparent|tracestate|request-context)$|trace[-_]?span"
    r"|^(x-)?idempotency[-_]?(key|token)$",
    re.I,
)
# A header that picks the API version the server answers with (Api-Version, X-Api-Version,
# Notion-Version): the client's choice, like Azure's api-version query parameter.
_VERSION_HEADER_RX = re.compile(r"^(x-)?([a-z0-9]+-)?api[-_]?version$|^[a-z0-9]+-version$", re.I)
# Transport and credential parameters on every operation of a Google discovery API.
_GOOGLE_STANDARD_PARAMS = (
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "upload_protocol",
    "uploadType",
)
_LOCATION_RANK = {"path": 0, "query": 1, "header": 2, "cookie": 3, "formData": 4, "body": 5}


# --------------------------------------------------------------------------- operations


def _json_media(content: Any) -> Any:
    """The schema of the most JSON-like media type in an OAS3 ``content`` map."""
    if not isinstance(content, dict) or not content:
        return None
    best = None
    best_rank = 99
    for mt, obj in content.items():
        if not isinstance(obj, dict):
            continue
        m = str(mt).lower()
        rank = (
            0
            if m.startswith("application/json")
            else 1
            if "json" in m
            else 2
            if m in ("application/x-www-form-urlencoded", "multipart/form-data")
            else 3
            if m in ("*/*", "application/*")
            else 4
        )
        if rank < best_rank:
            best, best_rank = obj, rank
    return best


class _Converter:
    def __init__(self, doc: dict[str, Any], opts: ConvertOptions, source_name: str):
        self.doc = doc
        self.opts = opts
        self.warnings: list[ConversionWarning] = []
        self._warned: set[tuple[str, str]] = set()
        self.current_op = ""
        self.schemas = SchemaConverter(doc, opts, self.warn)
        self.skip_params = self._auth_params() if opts.drop_auth_params else set()
        swagger = doc.get("swagger")
        openapi = doc.get("openapi")
        if openapi is not None:
            version = str(openapi)
            if not version.startswith("3."):
                raise SpecError("unsupported_version", f"openapi {version!r} is not 3.x")
            self.v2 = False
        elif swagger is not None:
            version = str(swagger)
            if version not in ("2.0", "2"):
                raise SpecError("unsupported_version", f"swagger {version!r} is not 2.0")
            self.v2 = True
        elif "swaggerVersion" in doc:
            raise SpecError(
                "unsupported_version", f"swagger {doc['swaggerVersion']!r} (1.x) is not supported"
            )
        else:
            raise SpecError(
                "unknown_format", "no 'swagger' or 'openapi' field: not an OpenAPI document"
            )
        info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
        cats = info.get("x-apisguru-categories")
        self.source = SourceInfo(
            api_title=str(info.get("title") or "").strip()[:200],
            api_version=str(info.get("version") or "")[:50],
            spec_version=version,
            categories=tuple(str(c) for c in cats) if isinstance(cats, list) else (),
            provider=str(info.get("x-providerName") or ""),
            service=str(info.get("x-serviceName") or ""),
            base_url=self._base_url(),
            source_name=source_name,
        )

    def warn(self, code: str, message: str) -> None:
        key = (code, message)
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(ConversionWarning(self.current_op, code, message))

    def _auth_params(self) -> set[tuple[str, str]]:
        """Parameters the client fills in, not the caller: API keys and Google's standard ones."""
        d = self.doc
        comps = d.get("components") if isinstance(d.get("components"), dict) else {}
        schemes = d.get("securityDefinitions") or comps.get("securitySchemes") or {}
        out: set[tuple[str, str]] = set()
        if isinstance(schemes, dict):
            for scheme in schemes.values():
                if isinstance(scheme, dict) and scheme.get("type") == "apiKey":
                    name, loc = scheme.get("name"), scheme.get("in")
                    if isinstance(name, str) and isinstance(loc, str):
                        out.add((loc, name))
        info = d.get("info") if isinstance(d.get("info"), dict) else {}
        origins = info.get("x-origin") if isinstance(info.get("x-origin"), list) else []
        if any(isinstance(o, dict) and o.get("format") == "google" for o in origins) or self._declares_xgafv():
            out |= {("query", n) for n in _GOOGLE_STANDARD_PARAMS}
        return out

    def _declares_xgafv(self) -> bool:
        """Whether the spec declares Google's ``$.xgafv`` error-format parameter, which only
        Google's discovery APIs have: some (907 corpus tools of dfareporting, content,
        sqladmin, ...) came through another format than ``google`` and kept ``quotaUser``,
        ``userIp`` and ``prettyPrint`` as the caller's."""
        d = self.doc
        comps = d.get("components") if isinstance(d.get("components"), dict) else {}
        pools = [d.get("parameters"), comps.get("parameters")]
        paths = d.get("paths") if isinstance(d.get("paths"), dict) else {}
        pools += [item.get("parameters") for item in paths.values() if isinstance(item, dict)]
        for pool in pools:
            items = pool.values() if isinstance(pool, dict) else pool if isinstance(pool, list) else ()
            if any(isinstance(p, dict) and p.get("name") == "$.xgafv" for p in items):
                return True
        return False

    def _client_value(self, loc: str, name: str, schema: dict[str, Any], required: bool) -> tuple[bool, Any]:
        """``(True, value)`` for a parameter the client fills in, never the caller:

        - an ``api-version`` query parameter: the spec's own ``info.version``, which is the API
          version the document describes (Azure's ARM and data-plane specs).  A synthesized
          one ("4.7.0") was noise in every request.  An enum that leaves the spec's version
          out keeps it the caller's, as does a spec without a version.  A version header
          (``Api-Version``, ``Accept-Version``, ``Notion-Version``) likewise: its default where
          it has one, else the spec's version.
        - a required parameter that allows one value (an ``enum`` of one, or ``const``): AWS's
          ``Action=DescribeInstances`` and ``Version=2016-11-15``, ``X-Amz-Target``, Azure's
          ``policyName`` that "should always be Default", TomTom's ``versionNumber`` 1.  A
          caller has no choice to make; 9,882 corpus tools asked for one, and requests spelt
          them out ("with action DescribeInstances and version 2016-11-15").

        ``(False, None)`` for every other parameter, and for all of them where
        ``pin_api_version`` (the first) or ``pin_constants`` (the second) is off."""
        enum = schema.get("enum")
        if self.opts.pin_constants and required:
            if "const" in schema:
                return True, schema["const"]
            if isinstance(enum, list) and len(enum) == 1 and enum[0] is not None:
                return True, enum[0]
        if not self.opts.pin_api_version:
            return False, None
        if loc == "header" and _VERSION_HEADER_RX.match(name):
            # payrun.io's Api-Version: "Omit or set as 'default' to target the current api version"
            if isinstance(schema.get("default"), (str, int)):
                return True, schema["default"]
        elif not (loc == "query" and name.lower() == "api-version"):
            return False, None
        version = self.source.api_version
        if not version or (isinstance(enum, list) and version not in enum):
            return False, None
        return True, version

    def _body_constant(self, field: str, schema: Any, body_schema: Any, required: bool) -> tuple[bool, Any]:
        """``(True, value)`` for a body field the client fills in: a required field that allows
        one value, or OData's ``@odata.type``, the type annotation of the body (Microsoft
        Graph requires it on 7,552 corpus tools).  Its value is the schema's default, else
        ``#`` and the name of the body's schema (``#microsoft.graph.plannerTask``), as OData
        clients write it; a body without a named schema leaves it the caller's."""
        if not isinstance(schema, dict):
            return False, None
        pinned, value = self._client_value("body", field, schema, required)
        if pinned or field != "@odata.type" or not self.opts.pin_constants:
            return pinned, value
        if isinstance(schema.get("default"), str) and schema["default"].startswith("#"):
            return True, schema["default"]
        ref = body_schema.get("$ref") if isinstance(body_schema, dict) else None
        if isinstance(ref, str) and ref.startswith("#/") and "." in ref.rsplit("/", 1)[-1]:
            return True, "#" + ref.rsplit("/", 1)[-1]
        return False, None

    def _base_url(self) -> str:
        d = self.doc
        if self.v2:
            host = d.get("host")
            if not isinstance(host, str) or not host:
                return ""
            schemes = d.get("schemes") if isinstance(d.get("schemes"), list) else []
            scheme = "https" if "https" in schemes or not schemes else str(schemes[0])
            base = d.get("basePath") if isinstance(d.get("basePath"), str) else ""
            return f"{scheme}://{host}{base}".rstrip("/")
        servers = d.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            url = servers[0].get("url")
            return url.rstrip("/") if isinstance(url, str) else ""
        return ""

    # -- whole spec

    def run(self) -> ConversionResult:
        paths = self.doc.get("paths")
        if paths is None:
            paths = {}
        if not isinstance(paths, dict):
            raise SpecError("invalid_paths", f"'paths' is a {type(paths).__name__}, not an object")
        tools: list[ToolDef] = []
        taken: set[str] = set()
        operations = skipped = 0
        for path, item in paths.items():
            item = self.schemas.deref(item)
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                operations += 1
                self.current_op = f"{method.upper()} {path}"
                if not isinstance(op, dict):
                    self.warn(
                        "operation_skipped", f"operation is a {type(op).__name__}, not an object"
                    )
                    skipped += 1
                    continue
                tool = self._operation(str(path), method, op, shared, taken)
                taken.add(tool.name)
                tools.append(tool)
        self.current_op = ""
        if operations == 0:
            raise SpecError("no_operations", "the spec declares no operations under 'paths'")
        if not tools:
            raise SpecError("no_valid_operations", f"all {operations} operations were malformed")
        return ConversionResult(self.source, tools, self.warnings, operations, skipped)

    # -- one operation

    def _parameters(self, shared: list[Any], own: Any) -> list[dict[str, Any]]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*shared, *(own if isinstance(own, list) else [])]:
            p = self.schemas.deref(raw)
            if not isinstance(p, dict):
                self.warn("parameter_skipped", "a parameter is not an object")
                continue
            name, loc = p.get("name"), p.get("in")
            if not isinstance(name, str) or not name or loc not in _LOCATION_RANK:
                self.warn("parameter_skipped", f"parameter {name!r} in {loc!r} is not usable")
                continue
            merged[(loc, name)] = p  # the operation's own wins over the path item's
        return list(merged.values())

    def _param_schema(self, p: dict[str, Any]) -> Any:
        if "schema" in p and (not self.v2 or p.get("in") == "body"):
            return p["schema"]
        if "content" in p:
            media = _json_media(p["content"])
            return media.get("schema") if isinstance(media, dict) else {}
        # Swagger 2 non-body parameters carry their schema keywords inline.
        return {
            k: v
            for k, v in p.items()
            if k
            not in (
                "name",
                "in",
                "required",
                "description",
                "schema",
                "allowEmptyValue",
                "collectionFormat",
            )
        }

    def _operation(
        self, path: str, method: str, op: dict[str, Any], shared: list[Any], taken: set[str]
    ) -> ToolDef:
        sc = self.schemas
        depth = self.opts.max_ref_depth
        props: dict[str, Any] = {}
        required: list[str] = []
        bindings: list[ParamBinding] = []
        path_params = set()
        params = self._parameters(shared, op.get("parameters"))
        params.sort(
            key=lambda p: _LOCATION_RANK[p["in"]]
        )  # stable: declared order within a location
        body_schema: Any = None
        body_required = False
        body_desc = ""
        size = 0

        def claim(arg: str, location: str) -> str:
            if arg not in props:
                return arg
            renamed = unique_name(f"{location}_{arg}", set(props))
            self.warn("name_clash_renamed", f"{location} parameter {arg!r} renamed to {renamed!r}")
            return renamed

        for p in params:
            loc = p["in"]
            name = p["name"]
            if loc == "header" and (
                name.lower() in _SKIPPED_HEADERS or (name.lower() in _CONDITIONAL_HEADERS and p.get("required") is not True)
            ):
                continue
            if loc == "header" and _TRACING_HEADER_RX.search(name):
                self.warn("tracing_header_skipped", f"header {name!r} carries a request id the client makes up")
                continue
            if self.opts.drop_auth_params and (
                (loc in ("header", "cookie") and _CREDENTIAL_HEADER_RX.search(name))
                or (loc == "query" and name.lower() in _CREDENTIAL_QUERY)
                or (loc == "header" and _SIGNING_HEADER_RX.match(name))
            ):
                self.warn("credential_param_skipped",
                          f"{loc} parameter {name!r} looks like a credential or a request signature")
                continue
            if (loc, name) in self.skip_params:
                continue
            if loc == "body":
                body_schema = p.get("schema", {})
                body_required = p.get("required") is True
                body_desc = sc.describe(p.get("description"))
                continue
            schema, n = sc.top(self._param_schema(p), "in", depth)
            size += n
            schema = dict(schema) if isinstance(schema, dict) else {}
            is_required = loc == "path" or p.get("required") is True
            pinned, value = self._client_value(loc, name, schema, is_required)
            if pinned:
                bindings.append(ParamBinding("", loc, name, True, value=value))
                continue
            desc = sc.describe(p.get("description"))
            if desc:
                schema["description"] = desc
            if p.get("deprecated") is True:
                schema["deprecated"] = True
            if (
                "example" in p
                and isinstance(p["example"], (str, int, float, bool))
                and "examples" not in schema
            ):
                schema["examples"] = [p["example"]]
            if loc == "path":
                path_params.add(name)
            arg = claim(name, loc)
            props[arg] = schema
            if is_required:
                required.append(arg)
            bindings.append(ParamBinding(arg, loc, name, is_required))

        if not self.v2 and "requestBody" in op:
            rb = sc.deref(op["requestBody"])
            if isinstance(rb, dict):
                media = _json_media(rb.get("content"))
                if isinstance(media, dict):
                    body_schema = media.get("schema", {})
                    body_required = rb.get("required") is True
                    body_desc = sc.describe(rb.get("description"))

        if body_schema is not None:
            body, n = sc.top(body_schema, "in", depth)
            size += n
            if (
                isinstance(body, dict)
                and isinstance(body.get("properties"), dict)
                and body.get("type", "object") == "object"
                and not any(k in body for k in COMBINATORS)
            ):
                body_req = set(body.get("required", ())) if body_required else set()
                for fname, fschema in body["properties"].items():
                    pinned, value = self._body_constant(fname, fschema, body_schema, fname in body_req)
                    if pinned:
                        bindings.append(ParamBinding("", "body", fname, True, value=value))
                        continue
                    arg = claim(fname, "body")
                    props[arg] = fschema
                    if fname in body_req:
                        required.append(arg)
                    bindings.append(ParamBinding(arg, "body", fname, fname in body_req))
            else:
                if not isinstance(body, dict) and not isinstance(body, bool):
                    body = {}
                if body_desc and isinstance(body, dict):
                    body = {**body, "description": body_desc}
                arg = claim("body", "body")
                props[arg] = body
                if body_required:
                    required.append(arg)
                bindings.append(ParamBinding(arg, "body", "", body_required))

        input_schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            input_schema["required"] = required

        output_schema = self._output(op)

        op_id = op.get("operationId") if isinstance(op.get("operationId"), str) else ""
        name = unique_name(tool_name(op_id, method, path), taken)
        summary = clean_text(op.get("summary"), 200)
        long = clean_text(op.get("description"), self.opts.max_description_chars)
        if summary and long:
            description = (
                long
                if long.lower().startswith(summary.lower().rstrip("."))
                else f"{summary.rstrip('.')}. {long}"
            )
            description = clean_text(description, self.opts.max_description_chars)
        else:
            description = summary or long
        if not description:
            description = fallback_description(method, path, list(props), self.source.api_title)
        tags = op.get("tags") if isinstance(op.get("tags"), list) else []
        return ToolDef(
            name=name,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            method=method.upper(),
            path=path,
            source=self.source,
            operation_id=op_id,
            summary=summary,
            tags=tuple(str(t) for t in tags),
            deprecated=op.get("deprecated") is True,
            bindings=tuple(bindings),
        )

    def _output(self, op: dict[str, Any]) -> dict[str, Any] | None:
        responses = op.get("responses")
        if not isinstance(responses, dict):
            return None
        codes = sorted(
            (str(c) for c in responses if str(c)[:1] == "2"),
            key=lambda c: (not c.isdigit(), c),
        )
        sc = self.schemas
        for code in codes:
            resp = sc.deref(
                responses.get(code)
                if code in responses
                else responses.get(int(code))
                if code.isdigit()
                else None
            )
            if not isinstance(resp, dict):
                continue
            if self.v2:
                schema = resp.get("schema")
            else:
                media = _json_media(resp.get("content"))
                schema = media.get("schema") if isinstance(media, dict) else None
            if schema is None:
                continue
            out, _ = sc.top(schema, "out", self.opts.max_output_ref_depth)
            if (
                isinstance(out, dict)
                and out.get("type") == "object"
                and not any(k in out for k in COMBINATORS)
            ):
                return out
            if (
                isinstance(out, dict)
                and "type" not in out
                and isinstance(out.get("properties"), dict)
                and not any(k in out for k in COMBINATORS)
            ):
                return {"type": "object", **out}
            return {
                "type": "object",
                "properties": {"result": out if isinstance(out, (dict, bool)) else {}},
            }
        return None


def convert_spec(
    source: str | bytes | Path | Mapping[str, Any],
    *,
    options: ConvertOptions | None = None,
    source_name: str = "",
) -> ConversionResult:
    """Convert a spec to MCP tools; raises :class:`SpecError` instead of returning a partial result."""
    doc = load_spec(source)
    if not source_name and (
        isinstance(source, Path)
        or (isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{"))
    ):
        source_name = str(source)
    try:
        return _Converter(doc, options or ConvertOptions(), source_name).run()
    except SpecError:
        raise
    except RecursionError as exc:
        raise SpecError("conversion_failed", "schema nesting too deep") from exc
    except Exception as exc:  # noqa: BLE001 - any bug must surface as a recorded SpecError, not a half result
        raise SpecError("conversion_failed", f"{type(exc).__name__}: {exc}") from exc
