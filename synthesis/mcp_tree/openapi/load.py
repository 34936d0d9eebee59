"""Reading a spec from a path, JSON or YAML text, bytes or a mapping, refusing YAML bombs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .model import SpecError

# --------------------------------------------------------------------------- loading


class _YamlLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader that keeps timestamps as strings, so schemas stay JSON-serialisable."""


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# YAML aliases let a few lines stand for a huge document ("billion laughs": nine levels of
# nine aliases are 9**9 nodes); walking it (conversion, JSON dumps) would never finish.
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 2_000_000  # nodes once every alias is expanded


def _check_yaml_aliases(data: str | bytes) -> None:
    """Refuse a YAML document with too many aliases, or whose aliases expand it past
    MAX_YAML_NODES, from its event stream alone (nothing is built or expanded)."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count
    stack: list[list[Any]] = [[None, 0]]  # [anchor, expanded size so far] per open collection
    aliases = 0
    for event in yaml.parse(data, Loader=_YamlLoader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise SpecError("yaml_aliases", f"more than {MAX_YAML_ALIASES} YAML aliases; write the document out")
            stack[-1][1] += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            stack[-1][1] += 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
            stack[-1][1] += size
        if stack[-1][1] > MAX_YAML_NODES or (len(stack) > 1 and stack[0][1] > MAX_YAML_NODES):
            raise SpecError("yaml_aliases", f"YAML aliases expand the document past {MAX_YAML_NODES} nodes")


def load_spec(source: str | bytes | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Parse a spec given as a path, JSON or YAML text/bytes, or a mapping."""
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")
    ):
        try:
            data: str | bytes = Path(source).read_bytes()
        except OSError as exc:
            raise SpecError("unreadable", f"{source}: {exc}") from exc
    else:
        data = source
    head = (
        data[:64].lstrip()
        if isinstance(data, str)
        else data[:64].lstrip().decode("utf-8", "replace")
    )
    if head.startswith("{"):
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise SpecError("invalid_json", str(exc)) from exc
    else:
        try:
            _check_yaml_aliases(data)
            doc = yaml.load(data, Loader=_YamlLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise SpecError("invalid_yaml", str(exc).replace("\n", " ")) from exc
    if not isinstance(doc, dict):
        raise SpecError("not_a_mapping", f"the document is a {type(doc).__name__}, not an object")
    return doc
