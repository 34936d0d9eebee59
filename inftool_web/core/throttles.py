"""API request rate per user (session or token), counted in Redis so all web processes share it."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from . import ratelimit


class ApiUserRateThrottle(BaseThrottle):
    """``settings.INFTOOL_API_RATE`` (e.g. ``"600/min"``) per user; per address for anonymous
    requests.  A user's tokens and sessions share one budget.  Redis down: not throttled."""

    scope = "api"

    def __init__(self):
        self.rate = ratelimit.Rate.parse(getattr(settings, "INFTOOL_API_RATE", "600/min"))
        self.decision: ratelimit.Decision | None = None

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            key = f"user:{user.pk}"
        else:
            key = f"ip:{ratelimit.client_ip(request)}"
        self.decision = ratelimit.hit(self.scope, key, self.rate)
        return self.decision.allowed

    def wait(self) -> float | None:
        if self.decision is None or self.decision.allowed:
            return None
        return float(self.decision.retry_after)

    def get_ident(self, request) -> str:
        return ratelimit.client_ip(request)


class LoginAttemptThrottle(BaseThrottle):
    """The log-in limits (per address and per username) for API views that check passwords."""

    def __init__(self):
        self.refusal: ratelimit.Decision | None = None

    def allow_request(self, request, view) -> bool:
        if request.method != "POST":
            return True
        data = request.data
        username = data.get("username", "") if hasattr(data, "get") else ""
        self.refusal = ratelimit.login_attempt(ip=ratelimit.client_ip(request), username=str(username))
        return self.refusal is None

    def wait(self) -> float | None:
        return float(self.refusal.retry_after) if self.refusal is not None else None

    def get_ident(self, request) -> str:
        return ratelimit.client_ip(request)
