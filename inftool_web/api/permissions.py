from rest_framework.permissions import BasePermission

from inftool_web.core.roles import has_role


def role_required(role: str) -> type[BasePermission]:
    """A permission class admitting users holding ``role`` or a higher one."""

    class HasRole(BasePermission):
        message = f"this action needs the {role} role"

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and has_role(request.user, role))

    HasRole.__name__ = f"Has{role.capitalize()}Role"
    return HasRole


IsViewer = role_required("viewer")
IsOperator = role_required("operator")
IsReviewer = role_required("reviewer")
