"""The ``$ref`` s of one spec: local pointers resolved with ``referencing``, each once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthesis.refs import MISSING, DocumentRefs


class SpecRefs:
    """Resolves a spec's local references and follows chains of them, warning on the rest."""

    def __init__(self, doc: dict[str, Any], warn: Callable[[str, str], None]):
        self._refs = DocumentRefs(doc)
        self.warn = warn

    def resolve(self, ref: str) -> Any:
        """The node a local ``#/...`` reference names, or None."""
        found = self._refs.target(ref)
        return None if found is MISSING else found

    def deref(self, node: Any, limit: int = 16) -> Any:
        """Follow a chain of ``$ref`` s (for parameters, bodies, responses)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < limit:
            ref = node["$ref"]
            target = self.resolve(ref)
            if target is None:
                self.warn("unresolved_ref", f"cannot resolve {ref}")
                return None
            node = target
            seen += 1
        return node
