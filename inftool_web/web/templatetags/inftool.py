import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """Indented JSON as plain text; the template's autoescape makes it safe to show."""
    if value in (None, "", [], {}):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _share(value, fmt: str) -> str:
    """A share (0..1) as hundredths in ``fmt``; "—" for none."""
    return "—" if value is None or value == "" else fmt.format(float(value) * 100)


@register.filter
def pct(value, digits: int = 0) -> str:
    return _share(value, f"{{:.{int(digits)}f}}%")


@register.filter
def get_item(mapping, key):
    return mapping.get(key, 0) if isinstance(mapping, dict) else None


@register.filter
def call_name(call) -> str:
    fn = call.get("function", call) if isinstance(call, dict) else {}
    return fn.get("name", "")


@register.filter
def call_args(call) -> str:
    fn = call.get("function", call) if isinstance(call, dict) else {}
    return pretty_json(fn.get("arguments", {}))


@register.filter
def mode_label(kind) -> str:
    return str(kind).replace("_", "-")


@register.filter
def pts(value, digits: int = 1) -> str:
    """A difference of accuracies in signed percentage points (0.125 -> "+12.5 pts")."""
    return _share(value, f"{{:+.{int(digits)}f}} pts")


@register.filter
def comparison_row(comparison, name: str):
    """A group (``non_live_ast``, ``all``) or category row of an iteration's comparison."""
    if not isinstance(comparison, dict):
        return None
    return (comparison.get("groups") or {}).get(name) or (comparison.get("categories") or {}).get(name)
