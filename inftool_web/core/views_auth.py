"""Log-in with rate limits per client address and per username, before any password is checked."""

from __future__ import annotations

import logging
import unicodedata

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError

from . import ratelimit

logger = logging.getLogger(__name__)


class _RefusedLoginForm(AuthenticationForm):
    """The submitted log-in form, refused without authenticating, so a limited client's
    guesses cost no password hashing and reveal nothing."""

    def __init__(self, *args, refusal: str, **kwargs):
        self.refusal = refusal
        super().__init__(*args, **kwargs)

    def clean(self):
        raise ValidationError(self.refusal, code="rate_limited")


def _username_key(username: str) -> str:
    # Case and Unicode variants of one name share a budget, so they cannot multiply it.
    return unicodedata.normalize("NFKC", username).strip().casefold()


class RateLimitedLoginView(LoginView):
    """Django's log-in view (template ``registration/login.html``) answering 429 with the
    form and a clear message once an address or a username has tried too often."""

    def post(self, request, *args, **kwargs):
        ip = ratelimit.client_ip(request)
        username = request.POST.get("username", "")
        decisions = [ratelimit.hit("login-ip", ip, settings.INFTOOL_LOGIN_RATE_PER_IP)]
        if username.strip():
            decisions.append(ratelimit.hit(
                "login-user", _username_key(username), settings.INFTOOL_LOGIN_RATE_PER_USERNAME
            ))
        refused = [d for d in decisions if not d.allowed]
        if not refused:
            return super().post(request, *args, **kwargs)
        retry_after = max(d.retry_after for d in refused)
        logger.warning("log-in rate limit reached: address %s, username %r", ip, username[:150])
        return self.rate_limited(retry_after)

    def rate_limited(self, retry_after: int):
        unit = "second" if retry_after == 1 else "seconds"
        form = _RefusedLoginForm(
            refusal=f"Too many log-in attempts. Wait {retry_after} {unit} and try again.",
            **self.get_form_kwargs(),
        )
        form.is_valid()
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(retry_after)
        return response
