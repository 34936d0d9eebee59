"""Log-in (the form and DRF's token endpoint) with rate limits per client address and per
username, applied before any password is checked, so a limited client's guesses cost no
password hashing and reveal nothing."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser

from . import ratelimit
from .parsers import JSONParser
from .throttles import LoginAttemptThrottle

logger = logging.getLogger(__name__)


class RateLimitedLoginView(LoginView):
    """Django's log-in view (template ``registration/login.html``) answering 429 with the
    form and a clear message once an address or a username has tried too often."""

    def post(self, request, *args, **kwargs):
        ip = ratelimit.client_ip(request)
        username = request.POST.get("username", "")
        refusal = ratelimit.login_attempt(ip=ip, username=username)
        if refusal is None:
            return super().post(request, *args, **kwargs)
        logger.warning("log-in rate limit reached: address %s, username %r", ip, username[:150])
        return self.rate_limited(refusal.retry_after)

    def rate_limited(self, retry_after: int):
        unit = "second" if retry_after == 1 else "seconds"
        # A fresh form, not the refused one: its errors would read as a wrong password.
        messages.error(self.request, f"Too many log-in attempts. Wait {retry_after} {unit} and try again.")
        form = self.get_form_class()(self.request, initial={"username": self.request.POST.get("username", "")})
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(retry_after)
        return response


_NO_NUL = RegexValidator(r"^[^\x00]*$", "NUL characters are not allowed.")


class TokenRequestSerializer(AuthTokenSerializer):
    """DRF's, with what it already refuses (blank, NUL) said in the API schema too."""

    username = serializers.CharField(label="Username", write_only=True, min_length=1, validators=[_NO_NUL])
    password = serializers.CharField(label="Password", style={"input_type": "password"}, trim_whitespace=False,
                                     write_only=True, min_length=1, validators=[_NO_NUL])


class RateLimitedObtainAuthToken(ObtainAuthToken):
    """DRF's username/password → token endpoint, under the log-in form's limits (DRF's own
    view has no throttle, which would make it the way around them)."""

    serializer_class = TokenRequestSerializer
    throttle_classes = [LoginAttemptThrottle]
    # DRF's view names its own parsers; ours answer 400 to JSON nested too deeply.
    parser_classes = [FormParser, MultiPartParser, JSONParser]


obtain_auth_token = RateLimitedObtainAuthToken.as_view()
