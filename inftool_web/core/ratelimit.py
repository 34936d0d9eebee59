"""Fixed-window rate limits kept in Redis, so every web process of a cluster shares the counts.

A window is ``period`` seconds long and aligned to the epoch; each (scope, key, window) is
one Redis counter that expires with its window.  When Redis cannot be reached the limiter
lets the request through and logs a warning: a Redis blip must not lock everyone out of
log-in and the API, and Redis being down already takes the task queue with it.

>>> Rate.parse("10/min")
Rate(limit=10, period=60)
>>> Rate.parse("600/5m")
Rate(limit=600, period=300)
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "inftool:ratelimit:"
# Log-in and API requests wait on this at most; a slow Redis counts as a down one.
REDIS_TIMEOUT_S = 0.5
# While Redis is down every request would log; one warning per interval says enough.
WARNING_INTERVAL_S = 60.0

_PERIODS = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"<count>/<period>"``: period is s, m, h, d (or sec, min, hour, day), optionally
        with a multiplier such as ``5m``."""
        match = _RATE_RE.match(text.lower())
        if not match or match.group(3) not in _PERIODS or int(match.group(1)) < 1:
            raise ValueError(
                f"bad rate {text!r}; write <count>/<period> with a count of at least 1 and a period "
                f"of {', '.join(sorted(set(_PERIODS)))}, e.g. '10/min' or '600/5m'"
            )
        multiplier = int(match.group(2) or 1)
        return cls(limit=int(match.group(1)), period=multiplier * _PERIODS[match.group(3)])


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window resets
    degraded: bool = False  # Redis was unreachable and the request was let through

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


@lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S,
        health_check_interval=30,
    )


_warn_lock = threading.Lock()
_last_warning = 0.0


def _warn_fail_open(scope: str, exc: Exception) -> None:
    global _last_warning
    with _warn_lock:
        now = time.monotonic()
        if now - _last_warning < WARNING_INTERVAL_S:
            return
        _last_warning = now
    logger.warning(
        "rate limiting is off: Redis is unreachable (%s: %s); letting %s requests through",
        type(exc).__name__, exc, scope,
    )


def _digest(key: str) -> str:
    # Keys hold user input (usernames); hashing bounds their length and keeps ':' out.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def hit(scope: str, key: str, rate: Rate | str, *, url: str | None = None,
        now: float | None = None) -> Decision:
    """Count one request of ``key`` in ``scope`` and say whether it is within ``rate``.

    Every call counts, allowed or not, so a client that keeps trying while limited does not
    get a fresh budget sooner; the count is atomic, so concurrent requests cannot slip
    past the limit together.
    """
    rate = Rate.parse(rate) if isinstance(rate, str) else rate
    now = time.time() if now is None else now
    window = int(now // rate.period)
    retry_after = max(1, math.ceil((window + 1) * rate.period - now))
    redis_key = f"{KEY_PREFIX}{scope}:{rate.period}:{window}:{_digest(key)}"
    try:
        pipe = _client(url or settings.REDIS_URL).pipeline(transaction=True)
        pipe.incr(redis_key)
        pipe.expire(redis_key, rate.period + 1)
        count, _ = pipe.execute()
    except (redis.exceptions.RedisError, OSError) as exc:
        _warn_fail_open(scope, exc)
        return Decision(allowed=True, count=0, limit=rate.limit, retry_after=0, degraded=True)
    return Decision(allowed=count <= rate.limit, count=int(count), limit=rate.limit,
                    retry_after=retry_after)


def _username_key(username: str) -> str:
    # Case and Unicode variants of one name share a budget, so they cannot multiply it.
    return unicodedata.normalize("NFKC", username).strip().casefold()


def login_attempt(*, ip: str, username: str) -> Decision | None:
    """Count one password attempt against the address's and the username's budgets
    (``INFTOOL_LOGIN_RATE_PER_IP``, ``INFTOOL_LOGIN_RATE_PER_USERNAME``); the refusal with the
    longest wait, or None when the attempt may go ahead."""
    decisions = [hit("login-ip", ip, settings.INFTOOL_LOGIN_RATE_PER_IP)]
    if username.strip():
        decisions.append(hit("login-user", _username_key(username), settings.INFTOOL_LOGIN_RATE_PER_USERNAME))
    refused = [d for d in decisions if not d.allowed]
    return max(refused, key=lambda d: d.retry_after) if refused else None


def client_ip(request) -> str:
    """The client's address, trusting X-Forwarded-For only as far as our own proxies.

    With ``INFTOOL_NUM_PROXIES = n`` the n-th address from the right of X-Forwarded-For is
    the client (each of our proxies appends the address it saw); anything left of it was
    written by the client and is ignored, so it cannot pick its own bucket.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = getattr(settings, "INFTOOL_NUM_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]
