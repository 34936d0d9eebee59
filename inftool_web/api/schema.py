"""The OpenAPI schema's error responses, which drf-spectacular leaves out, and empty
query parameters, which the API takes as absent (``?mode=&iteration=3`` filters by iteration).

Every operation documents the errors it can answer, so a client (and the schema fuzz test,
tests/web/test_api_fuzz.py) knows each status and its JSON body: 400 for bad parameters or
a bad body, 401/403 where it needs a signed-in user with a role, 404 where the path names an
object, 413 for an oversized body, 429 past the rate limit.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# DRF's validation errors: each bad field (or ``detail``, or ``non_field_errors``) with a
# message, a list of messages, or nested errors for a nested field.
_FIELD_ERRORS = {"type": "object", "additionalProperties": {}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class ApiAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        parameters = operation.get("parameters", [])
        for p in parameters:
            if p.get("in") == "query":
                p["allowEmptyValue"] = True  # the API reads an empty parameter as an absent one
                schema = p.get("schema", {})
                if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
                    # core/limits.py answers 400 to a NUL in any query parameter
                    p["schema"] = {**schema, "pattern": "^[^\\x00]*$"}
        errors: dict[str, dict] = {}
        if parameters or "requestBody" in operation:
            errors["400"] = _json("Invalid parameters or body; each message names the valid values.", _FIELD_ERRORS)
        if {} not in operation.get("security", [{}]):
            errors["401"] = _json("Not signed in: send `Authorization: Token <key>` or a session cookie.", _DETAIL)
            errors["403"] = _json("Signed in without the role this operation needs.", _DETAIL)
        if any(p.get("in") == "path" for p in parameters):
            errors["404"] = _json("No such object.", _DETAIL)
        if "requestBody" in operation:
            errors["413"] = _json("The request body is larger than the server accepts.", _DETAIL)
        if getattr(self.view, "throttle_classes", None):
            errors["429"] = _json("Too many requests: retry after the `Retry-After` header's seconds.", _DETAIL)
        for status, response in errors.items():
            responses.setdefault(status, response)
        return operation
