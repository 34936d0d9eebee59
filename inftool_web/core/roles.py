"""Roles: viewer < reviewer (may audit) < operator (may launch iterations, manage sources)."""

from __future__ import annotations

from django.contrib.auth.models import Group

ROLES = ("viewer", "reviewer", "operator")
_RANK = {name: i for i, name in enumerate(ROLES)}


def ensure_role_groups() -> None:
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def user_role(user) -> str | None:
    """The highest role of a user, or None for anonymous users and users without one."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return "operator"
    names = set(user.groups.values_list("name", flat=True))
    held = [r for r in ROLES if r in names]
    return held[-1] if held else None


def has_role(user, role: str) -> bool:
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
    held = user_role(user)
    return held is not None and _RANK[held] >= _RANK[role]


def set_role(user, role: str) -> None:
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
    ensure_role_groups()
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get(name=role))
