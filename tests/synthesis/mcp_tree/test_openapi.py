import json
import re
from pathlib import Path

import jsonschema
import pytest

from synthesis.mcp_tree.openapi import (
    TOOL_NAME_RE,
    ConvertOptions,
    SpecError,
    clean_text,
    convert_spec,
    fallback_description,
    load_spec,
    tool_name,
)

SPECS = Path(__file__).parent / "specs"
META = jsonschema.Draft202012Validator(
    jsonschema.Draft202012Validator.META_SCHEMA, format_checker=jsonschema.FormatChecker()
)


def _tools(name: str) -> dict:
    result = convert_spec(SPECS / name)
    return {t.name: t for t in result.tools}


def _assert_valid(schema: dict) -> None:
    errors = list(META.iter_errors(schema))
    assert not errors, [e.message for e in errors]
    text = json.dumps(schema)
    assert "$ref" not in text
    json.loads(text)


@pytest.mark.parametrize(
    "name",
    ["petstore_swagger2.json", "shop_swagger2.yaml", "library_oas30.yaml", "events_oas31.json"],
)
def test_every_schema_is_valid_2020_12(name):
    result = convert_spec(SPECS / name)
    assert result.tools and result.operations == len(result.tools)
    for tool in result.tools:
        assert TOOL_NAME_RE.match(tool.name)
        assert tool.description
        _assert_valid(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        if tool.output_schema is not None:
            _assert_valid(tool.output_schema)
            assert tool.output_schema["type"] == "object"
        mcp = tool.to_mcp()
        assert mcp["inputSchema"] is tool.input_schema
        record = json.loads(json.dumps(tool.to_dict()))
        assert record["source"]["api_title"] and record["method"] == tool.method
    assert len({t.name for t in result.tools}) == len(result.tools)


def test_swagger2_parameters_body_and_formdata():
    tools = _tools("petstore_swagger2.json")
    assert set(tools) == {
        "listPets",
        "pets_create",
        "showPetById",
        "delete_pets_petId",
        "uploadPhoto",
    }

    lst = tools["listPets"]
    props = lst.input_schema["properties"]
    # The transport header and the request id are left to the client.
    assert set(props) == {"limit", "status"}
    assert props["limit"] == {
        "type": "integer",
        "default": 20,
        "minimum": 1,
        "exclusiveMaximum": 100,
    }
    assert props["status"]["items"]["enum"] == ["available", "sold"]
    assert lst.description == "List all pets. Returns pets from the store. See the docs for paging."
    # A non-object result is wrapped, as MCP wants an object outputSchema.
    assert lst.output_schema["properties"]["result"]["type"] == "array"
    assert lst.source.base_url == "https://petstore.example.com/v2"
    assert lst.source.categories == ("ecommerce",)

    create = tools["pets_create"]
    props = create.input_schema["properties"]
    # Body fields are flattened next to the query parameter.
    assert list(props) == ["status", "name", "tag", "owner"]
    assert create.input_schema["required"] == ["name"]
    assert props["tag"]["type"] == ["string", "null"]
    assert props["name"]["examples"] == ["Rex"]
    binding = {b.arg: (b.location, b.name) for b in create.bindings}
    assert binding == {
        "status": ("query", "status"),
        "name": ("body", "name"),
        "tag": ("body", "tag"),
        "owner": ("body", "owner"),
    }

    # Pet = allOf[NewPet, {id}] is merged into one object; the read-only id stays in output.
    pet = create.output_schema
    assert pet["type"] == "object" and "allOf" not in pet
    assert set(pet["properties"]) == {"name", "tag", "owner", "id"}
    assert pet["required"] == ["name", "id"]

    upload = tools["uploadPhoto"]
    props = upload.input_schema["properties"]
    assert props["file"] == {"type": "string", "format": "binary", "description": "The photo"}
    assert props["caption"]["maxLength"] == 140
    assert upload.input_schema["required"] == ["petId", "file"]
    assert props["petId"]["description"] == "ID of the pet"


def test_swagger2_yaml_formdata_markdown_and_self_reference():
    tools = _tools("shop_swagger2.yaml")
    get = tools["categories_get"]
    assert get.description.startswith(
        "Get a category Returns the category with its children and parent."
    )
    assert "|" not in get.description and "#" not in get.description
    # String bounds are coerced to numbers; integer response codes from YAML work.
    assert get.input_schema["properties"]["depth"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 5,
    }
    cat = get.output_schema
    # Category.parent is a Category: cut where it recurs, a described stub.
    assert cat["properties"]["parent"]["type"] == "object"
    assert "properties" not in cat["properties"]["parent"]
    assert "Category" in cat["properties"]["children"]["items"]["description"]
    order = tools["post_orders"]
    props = order.input_schema["properties"]
    assert props["quantity"] == {"type": "integer", "default": 1}
    assert props["note"]["type"] == ["string", "null"]
    assert order.input_schema["required"] == ["sku"]
    assert {b.location for b in order.bindings} == {"formData"}
    assert order.output_schema is None


def test_cycles_are_cut_and_invalid_patterns_dropped():
    result = convert_spec(SPECS / "petstore_swagger2.json")
    tool = next(t for t in result.tools if t.name == "pets_create")
    owner = tool.input_schema["properties"]["owner"]
    friend = owner["properties"]["friends"]["items"]
    # Person -> friends -> Person recurs on its own path: a stub, no infinite nesting.
    assert friend["type"] == "object" and "properties" not in friend
    assert "Person" in friend["description"]
    assert "pattern" not in owner["properties"]["name"]
    codes = {w.code for w in result.warnings}
    assert "invalid_pattern" in codes


def test_oas30_yaml_refs_clashes_nullable_and_bodies():
    tools = _tools("library_oas30.yaml")
    get = tools["getBook"]
    props = get.input_schema["properties"]
    # path wins the name; the query parameter of the same name is renamed deterministically.
    assert list(props) == ["bookId", "query_bookId", "lang", "theme"]
    # credentials declared as plain parameters are the server's business, not the caller's
    assert get.input_schema["required"] == ["bookId"]
    assert {b.arg: b.location for b in get.bindings}["query_bookId"] == "query"
    assert props["lang"]["type"] == ["string", "null"]
    assert props["lang"]["enum"] == ["en", "fr", None]

    book = get.output_schema
    assert "secret" not in book["properties"]  # write-only is not returned
    assert book["properties"]["rating"] == {"type": "number", "maximum": 5, "exclusiveMinimum": 0}
    # additionalProperties given as a $ref, and an ECMA named group rewritten for Python.
    tag = book["properties"]["tags"]["additionalProperties"]
    assert tag["pattern"] == "^(?P<word>[a-z]+)$"
    # anyOf [Author, nullable object] collapses to a nullable Author.
    assert book["properties"]["author"]["type"] == ["object", "null"]
    assert "name" in book["properties"]["author"]["properties"]

    update = tools["updateBook"]
    props = update.input_schema["properties"]
    assert "bookId" in props and "secret" in props  # path param; write-only body field
    assert update.input_schema["required"] == ["bookId", "title"]
    assert update.description == "Replace a book."

    post = tools["post_books"]
    assert post.input_schema["required"] == ["title"]
    # YAML dates stay strings, so schemas serialise as JSON.
    assert post.input_schema["properties"]["published"]["default"] == "2020-01-01"
    assert post.output_schema["properties"]["result"]["type"] == "array"
    assert post.description.startswith("Create books")

    tags = tools["put_tags"]
    assert tags.input_schema["properties"]["body"]["type"] == "array"
    assert tags.output_schema is None


def test_oas31_types_oneof_and_recursion():
    tools = _tools("events_oas31.json")
    search = tools["get_events"]
    assert search.description == "Search events"
    assert search.input_schema["properties"]["since"]["type"] == ["string", "null"]
    node_items = search.output_schema["properties"]["items"]["items"]
    assert node_items["properties"]["name"] == {"type": "string"}

    create = tools["createEvent"]
    body = create.input_schema["properties"]["body"]
    assert len(body["oneOf"]) == 2 and body["oneOf"][0]["properties"]["kind"] == {
        "const": "meeting"
    }
    assert create.input_schema["required"] == ["body"]

    children = tools["get_events_id_children"]
    assert children.output_schema["properties"]["parent"]["type"] == "object"
    assert children.description.startswith("List the children of an event (by id)")


def test_malformed_specs_raise_typed_errors():
    with pytest.raises(SpecError) as exc:
        convert_spec(SPECS / "malformed_paths.yaml")
    assert exc.value.reason_code == "invalid_paths"
    with pytest.raises(SpecError) as exc:
        convert_spec(SPECS / "truncated.json")
    assert exc.value.reason_code == "invalid_json"
    with pytest.raises(SpecError) as exc:
        convert_spec(SPECS / "swagger12.json")
    assert exc.value.reason_code == "unsupported_version"
    with pytest.raises(SpecError) as exc:
        convert_spec({"info": {"title": "x"}})
    assert exc.value.reason_code == "unknown_format"
    with pytest.raises(SpecError) as exc:
        convert_spec({"openapi": "3.1.0", "info": {"title": "hooks"}, "webhooks": {}})
    assert exc.value.reason_code == "no_operations"
    with pytest.raises(SpecError) as exc:
        convert_spec("- a\n- list\n")
    assert exc.value.reason_code == "not_a_mapping"
    with pytest.raises(SpecError) as exc:
        convert_spec(SPECS / "missing.json")
    assert exc.value.reason_code == "unreadable"


def test_operation_level_problems_are_warnings_not_failures():
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Half", "version": "1"},
        "paths": {
            "/a": {
                "get": "oops",
                "post": {"parameters": [{"in": "query"}, {"$ref": "#/nope"}], "responses": {}},
            },
        },
    }
    result = convert_spec(spec)
    assert [t.name for t in result.tools] == ["post_a"] and result.skipped == 1
    codes = [(w.operation, w.code) for w in result.warnings]
    assert ("GET /a", "operation_skipped") in codes
    assert ("POST /a", "parameter_skipped") in codes and ("POST /a", "unresolved_ref") in codes
    with pytest.raises(SpecError) as exc:
        convert_spec({"swagger": "2.0", "info": {}, "paths": {"/a": {"get": 1}}})
    assert exc.value.reason_code == "no_valid_operations"


def test_credentials_are_left_to_the_client():
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Keys", "version": "1", "x-origin": [{"format": "google"}]},
        "components": {
            "securitySchemes": {"k": {"type": "apiKey", "in": "query", "name": "api_key"}}
        },
        "paths": {
            "/a": {
                "get": {
                    "parameters": [
                        {"name": "api_key", "in": "query", "schema": {"type": "string"}},
                        {"name": "api_key", "in": "header", "schema": {"type": "string"}},
                        {"name": "prettyPrint", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                    ]
                }
            }
        },
    }
    (tool,) = convert_spec(spec).tools
    # the declared scheme, Google's standard parameters, and a credential-named header
    assert list(tool.input_schema["properties"]) == ["q"]
    (kept,) = convert_spec(spec, options=ConvertOptions(drop_auth_params=False)).tools
    assert len(kept.input_schema["properties"]) == 4
    # a Google discovery API that came through another format is known by its $.xgafv
    spec["info"] = {"title": "Keys", "version": "1", "x-origin": [{"format": "openapi"}]}
    spec["paths"]["/a"]["parameters"] = [{"name": "$.xgafv", "in": "query", "schema": {"type": "string"}}]
    (tool,) = convert_spec(spec).tools
    assert list(tool.input_schema["properties"]) == ["q"]


def test_azure_api_version_is_the_spec_version_the_client_sends():
    """An Azure operation asked the caller for a required ``api-version`` ("Client API
    version."), and synthesis filled it with "4.7.0": noise in every request about an Azure
    resource.  The spec's info.version is the version it describes; the client sends it."""
    shared = {"name": "api-version", "in": "query", "required": True, "type": "string",
              "description": "Client API version."}
    spec = {
        "swagger": "2.0",
        "info": {"title": "NetworkManagementClient", "version": "2023-09-01"},
        "paths": {
            "/watchers/{name}": {
                "get": {"operationId": "Watchers_Get", "parameters": [
                    {"name": "name", "in": "path", "required": True, "type": "string"}, shared]},
                "put": {"operationId": "Watchers_Put", "parameters": [
                    {**shared, "enum": ["2022-01-01", "2022-05-01"]}]},
                "post": {"operationId": "Watchers_Post", "parameters": [
                    {"name": "Accept-Version", "in": "header", "required": True, "type": "string"},
                    {"name": "Api-Version", "in": "header", "type": "string", "default": "default",
                     "description": "Omit or set as 'default' to target the current api version."},
                    {"name": "User-Agent", "in": "header", "required": True, "type": "string"},
                    {"name": "X-API2CRM-USER-KEY", "in": "header", "required": True, "type": "string"},
                    {"name": "ImpersonationResourceId", "in": "header", "type": "string"},
                    {"name": "If-Match", "in": "header", "type": "string", "description": "ETag"}]},
            }
        },
    }
    get, put, post = convert_spec(spec).tools
    # version headers are the client's too; so are its user agent and its keys
    assert post.input_schema["properties"] == {}
    assert {b.name: b.value for b in post.bindings} == {"Accept-Version": "2023-09-01", "Api-Version": "default"}
    assert list(get.input_schema["properties"]) == ["name"] and get.input_schema["required"] == ["name"]
    pinned = [b for b in get.bindings if b.name == "api-version"]
    assert [(b.arg, b.location, b.required, b.value) for b in pinned] == [("", "query", True, "2023-09-01")]
    # an enum that leaves the spec's version out stays the caller's choice, as does every
    # api-version where pinning is turned off
    assert "api-version" in put.input_schema["properties"]
    (unpinned, _, _) = convert_spec(spec, options=ConvertOptions(pin_api_version=False)).tools
    assert "api-version" in unpinned.input_schema["required"]


def test_a_required_parameter_that_allows_one_value_is_the_clients_and_aws_signing_headers_are_dropped():
    """AWS's query-protocol specs ask every caller for ``Action`` and ``Version`` (an enum of
    one value each) and for seven Signature Version 4 headers: 9,882 corpus tools held a
    required one-value parameter and 15,402 the signing headers, so requests read "with action
    CancelMessageMoveTask and version 2012-11-05" and the Tool Agent was offered a signature to
    make up.  The client sends the constants; the server signs."""
    signing = [{"name": h, "in": "header", "schema": {"type": "string"}}
               for h in ("X-Amz-Content-Sha256", "X-Amz-Date", "X-Amz-Algorithm", "X-Amz-Credential",
                         "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Security-Token")]
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Amazon Simple Queue Service", "version": "2012-11-05"},
        "paths": {
            "/#Action=CancelMessageMoveTask": {"post": {
                "operationId": "POST_CancelMessageMoveTask",
                "parameters": [
                    {"name": "Action", "in": "query", "required": True,
                     "schema": {"type": "string", "enum": ["CancelMessageMoveTask"]}},
                    {"name": "Version", "in": "query", "required": True,
                     "schema": {"type": "string", "enum": ["2012-11-05"]}},
                    {"name": "TaskHandle", "in": "query", "required": True, "schema": {"type": "string"}},
                    # optional: the caller may send it or not, so it stays the caller's
                    {"name": "shape", "in": "query", "schema": {"type": "string", "enum": ["array"]}},
                    {"name": "versionNumber", "in": "path", "required": True, "schema": {"type": "integer", "const": 1}},
                    {"name": "X-Amz-Target", "in": "header", "required": True,
                     "schema": {"type": "string", "enum": ["AmazonSQS.CancelMessageMoveTask"]}},
                    *signing,
                    # Autotask's credentials, on every one of its operations
                    {"name": "ApiIntegrationCode", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "UserName", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "X-IBM-Client-Id", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
            }},
        },
    }
    (tool,) = convert_spec(spec).tools
    assert list(tool.input_schema["properties"]) == ["TaskHandle", "shape"]
    assert tool.input_schema["required"] == ["TaskHandle"]
    sent = {b.name: (b.location, b.value) for b in tool.bindings if not b.arg}
    assert sent == {"Action": ("query", "CancelMessageMoveTask"), "Version": ("query", "2012-11-05"),
                    "versionNumber": ("path", 1), "X-Amz-Target": ("header", "AmazonSQS.CancelMessageMoveTask")}
    (kept,) = convert_spec(spec, options=ConvertOptions(pin_constants=False, drop_auth_params=False)).tools
    assert {"Action", "Version", "X-Amz-Target", "X-Amz-Signature", "X-Amz-Date"} <= set(kept.input_schema["properties"])
    assert "Action" in kept.input_schema["required"]


def test_request_tracing_headers_are_the_clients():
    """A request id, correlation id, trace span or idempotency key is made up by the client
    for each request: a user asked for one read "enable authenticator … for x request
    27b0051828188f715ce".  In a path or query a request id names a resource and stays."""
    headers = ["X-Request-Id", "X-Bunq-Client-Request-Id", "client-request-id", "return-client-request-id",
               "x-ms-client-request-id", "zap-trace-span", "Idempotency-Key", "WM_QOS.CORRELATION_ID",
               "X-Correlation-ID", "traceparent"]
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Requests", "version": "1"},
        "paths": {"/requests/{requestId}": {"post": {
            "operationId": "approveRequest",
            "parameters": [
                {"name": "requestId", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "trackingNumber", "in": "query", "schema": {"type": "string"}},
                {"name": "X-Customer-Id", "in": "header", "schema": {"type": "string"}},
                *({"name": h, "in": "header", "required": i % 2 == 0, "schema": {"type": "string"}}
                  for i, h in enumerate(headers)),
            ],
        }}},
    }
    converted = convert_spec(spec)
    (tool,) = converted.tools
    assert list(tool.input_schema["properties"]) == ["requestId", "trackingNumber", "X-Customer-Id"]
    assert tool.input_schema["required"] == ["requestId"]
    assert sum(w.code == "tracing_header_skipped" for w in converted.warnings) == len(headers)


def test_names_are_legal_unique_and_stable():
    assert tool_name("a/b.c d", "get", "/x") == "a_b_c_d"
    long = tool_name("x" * 100, "get", "/x")
    assert len(long) == 64 and TOOL_NAME_RE.match(long)
    assert long == tool_name("x" * 100, "get", "/x")
    spec = {
        "swagger": "2.0",
        "info": {"title": "Dup", "version": "1"},
        "paths": {
            "/a": {"get": {"operationId": "same"}},
            "/b": {"get": {"operationId": "same"}},
            "/c/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "type": "string"}]}},
        },
    }
    names = [t.name for t in convert_spec(spec).tools]
    assert names == ["same", "same_2", "get_c_id"]


def test_text_cleaning_and_fallback():
    assert clean_text("# Title\n\n* one\n* two &amp; `three`", 100) == "Title one two & three"
    capped = clean_text("First sentence is here. " + "word " * 100, 60)
    assert capped == "First sentence is here." or capped.endswith("…")
    assert len(clean_text("word " * 100, 50)) <= 50
    text = fallback_description(
        "delete", "/stores/{storeId}/items/{itemId}", ["storeId", "itemId"], "Shop"
    )
    assert (
        text
        == "Delete one item of a store (by storeId) by itemId, in the Shop API. Parameters: storeId, itemId."
    )


def test_depth_and_size_limits_keep_schemas_small():
    props = {f"p{i}": {"$ref": "#/definitions/Wide"} for i in range(30)}
    spec = {
        "swagger": "2.0",
        "info": {"title": "Wide", "version": "1"},
        "paths": {
            "/w": {
                "post": {
                    "parameters": [
                        {"name": "b", "in": "body", "schema": {"$ref": "#/definitions/Wide"}}
                    ]
                }
            }
        },
        "definitions": {"Wide": {"type": "object", "properties": props}},
    }
    tool = convert_spec(spec, options=ConvertOptions(max_schema_nodes=50)).tools[0]
    nested = tool.input_schema["properties"]["p0"]
    assert "properties" not in nested and "Wide" in nested["description"]
    _assert_valid(tool.input_schema)


def test_load_spec_accepts_text_bytes_and_dicts():
    text = (SPECS / "library_oas30.yaml").read_text()
    assert load_spec(text)["info"]["title"] == "Library"
    assert load_spec(text.encode())["info"]["title"] == "Library"
    assert load_spec(json.dumps({"openapi": "3.0.0"}))["openapi"] == "3.0.0"
    assert load_spec({"swagger": "2.0"}) == {"swagger": "2.0"}
    assert re.match(r"^\d", load_spec(SPECS / "library_oas30.yaml")["info"]["version"])


def test_docstring_examples():
    import doctest
    import importlib
    import pkgutil

    import synthesis.mcp_tree.openapi as package
    import synthesis.refs

    modules = [package, synthesis.refs] + [
        importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)
    ]
    assert len(modules) >= 8
    results = [doctest.testmod(m) for m in modules]
    assert sum(r.failed for r in results) == 0
    assert sum(r.attempted for r in results) > 0


def test_credentials_declared_as_plain_parameters_are_left_out_with_a_warning():
    result = convert_spec(SPECS / "library_oas30.yaml")
    get = next(t for t in result.tools if t.name == "getBook")
    assert "session" not in get.input_schema["properties"]
    assert "Ocp-Apim-Subscription-Key" not in get.input_schema["properties"]
    skipped = {w.message for w in result.warnings if w.code == "credential_param_skipped"}
    assert any("Ocp-Apim-Subscription-Key" in m for m in skipped) and any("session" in m for m in skipped)


# ---------------------------------------------------------------------------- hostile input


def _billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['a: &a ["lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*{chr(96 + i)}"] * width)
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [{refs}]")
    return "openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n" + "\n".join(lines) + "\n"


def test_a_billion_laughs_yaml_is_refused_quickly():
    import time

    from synthesis.mcp_tree.openapi import SpecError, load_spec

    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(_billion_laughs())
    assert info.value.reason_code == "yaml_aliases"
    # fewer aliases, each expanding a lot: refused on size, not only on the count
    with pytest.raises(SpecError, match="expand the document"):
        load_spec(_billion_laughs(levels=8, width=9)[:])
    assert time.perf_counter() - t0 < 5


def test_a_yaml_with_a_few_aliases_still_loads():
    from synthesis.mcp_tree.openapi import load_spec

    doc = load_spec("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n"
                    "components:\n  schemas:\n    A: &a {type: string}\n    B: *a\n    C: [*a, *a]\n")
    assert doc["components"]["schemas"]["B"] == {"type": "string"}


def test_too_many_aliases_are_refused():
    from synthesis.mcp_tree.openapi import MAX_YAML_ALIASES, SpecError, load_spec

    text = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n"
    with pytest.raises(SpecError, match="aliases"):
        load_spec(text)


def test_odata_type_is_the_body_schemas_name_sent_by_the_client():
    """Microsoft Graph requires ``@odata.type`` in 7,552 corpus tools' bodies: a type annotation
    the client writes ("#microsoft.graph.plannerTask"), which synthesis filled with free text."""
    spec = {
        "openapi": "3.0.1",
        "info": {"title": "Microsoft Graph", "version": "v1.0"},
        "paths": {
            "/planner/plans/{plan-id}/tasks": {"post": {
                "operationId": "planner.plans.CreateTasks",
                "parameters": [{"name": "plan-id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/microsoft.graph.plannerTask"}}}},
            }},
            "/chats/{id}/hostedContents": {"post": {
                "operationId": "chats.CreateHostedContents",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["@odata.type"], "properties": {
                        "@odata.type": {"type": "string", "default": "#microsoft.graph.chatMessageHostedContent"},
                        "contentType": {"type": "string"}}}}}},
            }},
            "/things": {"post": {
                "operationId": "things.Create",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["@odata.type"], "properties": {"@odata.type": {"type": "string"}}}}}},
            }},
        },
        "components": {"schemas": {"microsoft.graph.plannerTask": {
            "type": "object", "required": ["@odata.type", "title"],
            "properties": {"@odata.type": {"type": "string"}, "title": {"type": "string"}}}}},
    }
    task, hosted, thing = convert_spec(spec).tools
    assert task.input_schema["required"] == ["plan-id", "title"]
    assert "@odata.type" not in task.input_schema["properties"]
    assert [(b.location, b.value) for b in task.bindings if b.name == "@odata.type"] == [
        ("body", "#microsoft.graph.plannerTask")]
    assert [b.value for b in hosted.bindings if b.name == "@odata.type"] == ["#microsoft.graph.chatMessageHostedContent"]
    # a body without a named schema or a default: nothing to send, so it stays the caller's
    assert thing.input_schema["required"] == ["@odata.type"]
    (kept, _, _) = convert_spec(spec, options=ConvertOptions(pin_constants=False)).tools
    assert "@odata.type" in kept.input_schema["required"]
