"""Local JSON references (``#/components/schemas/Pet``, ``#/$defs/x``, ``#anchor``).

Both the OpenAPI converter and the schema helpers of role-play resolve references with
``referencing`` (the library ``jsonschema`` is built on), not with a pointer walk of their
own: it decodes ``~0``/``~1`` and percent escapes, indexes lists, and knows anchors.

>>> doc = {"$defs": {"a/b": {"type": "string"}, "list": [{"type": "integer"}]}}
>>> target("#/$defs/a~1b", doc)
{'type': 'string'}
>>> target("#/$defs/list/0", doc)
{'type': 'integer'}
>>> target("#pet", {"$defs": {"p": {"$anchor": "pet", "type": "object"}}})
{'$anchor': 'pet', 'type': 'object'}
>>> target("#/$defs/nothing", doc) is MISSING
True
>>> target("https://example.com/schema.json", doc) is MISSING
True
"""

from __future__ import annotations

from typing import Any

from referencing import Registry, Resource, Specification
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

# What a reference that names nothing resolves to (``None`` and ``{}`` are real targets).
MISSING: Any = object()

_NO_REMOTE = Registry().resolver()  # pointer walks never fetch anything


def is_local(ref: Any) -> bool:
    """A reference into the same document (``#...``); others are left open."""
    return isinstance(ref, str) and ref.startswith("#")


def target(ref: str, root: Any) -> Any:
    """What the local reference ``ref`` names inside ``root``, or :data:`MISSING`."""
    if not is_local(ref):
        return MISSING
    fragment = ref[1:]
    try:
        if not fragment or fragment.startswith("/"):
            # A JSON pointer (RFC 6901) walks any document, an OpenAPI one included, so
            # the walk does not read it as JSON Schema (whose keywords it would interpret).
            opaque = Resource(contents=root, specification=Specification.OPAQUE)
            return opaque.pointer(fragment, _NO_REMOTE).contents
        # A plain-name fragment is an anchor (``"$anchor": "pet"``) of a JSON Schema.
        resource = DRAFT202012.create_resource(root)
        return Registry().with_resource("", resource).resolver().lookup(ref).contents
    except (Unresolvable, LookupError, TypeError, ValueError):
        return MISSING


class DocumentRefs:
    """The references of one document that does not change, each looked up once."""

    def __init__(self, root: Any):
        self.root = root
        self._found: dict[str, Any] = {}

    def target(self, ref: str) -> Any:
        """What ``ref`` names, or :data:`MISSING` (remembered either way)."""
        found = self._found.get(ref, self)
        if found is self:
            found = self._found[ref] = target(ref, self.root)
        return found
