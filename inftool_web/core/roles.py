"""Roles: viewer < reviewer (may audit) < operator (may launch iterations, manage sources)."""

from __future__ import annotations

from django.contrib.auth.models import Group

ROLES = ("viewer", "reviewer", "operator")
_RANK = {name: i for i, name in enumerate(ROLES)}


def ensure_role_groups() -> None:
    for name in ROLES:
        Group.objects.get_or_create(name=name)


_CACHE = "_inftool_role"


def user_role(user) -> str | None:
    """The highest role of a user, or None for anonymous users and users without one.

    A user without a role is signed in but sees nothing: reading needs ``viewer``.  The
    answer is kept on the user object, which lives for one request (or one connection).
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return "operator"
    if not hasattr(user, _CACHE):
        names = set(user.groups.values_list("name", flat=True))
        held = [r for r in ROLES if r in names]
        setattr(user, _CACHE, held[-1] if held else None)
    return getattr(user, _CACHE)


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
    if hasattr(user, _CACHE):
        delattr(user, _CACHE)
