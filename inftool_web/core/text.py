"""Text that PostgreSQL can store.

PostgreSQL's ``text`` and ``jsonb`` refuse the NUL character (``\\x00`` / ``\\u0000``), and
UTF-8 cannot carry a lone surrogate (``"\\ud800"``, which ``json.loads`` accepts).  Model
replies, tool schemas from live servers and spec files can hold either; storing one would
fail the whole write.  ``storable`` swaps each for U+FFFD, the replacement character.

>>> storable({"a\\x00": ["x\\x00y", 1, None]})
{'a�': ['x�y', 1, None]}
>>> storable("\\ud800 ok")
'� ok'
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def storable(value: Any) -> Any:
    """``value`` with every string in it (dict keys too, dataclass fields too) made storable."""
    if isinstance(value, (dict, list)) and _already_storable(value):
        return value  # the common case, checked at C speed without copying
    return _scrub(value)


def _already_storable(value: dict | list) -> bool:
    try:
        text = json.dumps(value, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return False
    return "\\u0000" not in text  # json.dumps writes NUL as this escape


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _scrub(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value
