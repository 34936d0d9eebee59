"""Where the server may send requests to model servers, and which API key goes where.

An operator may point a role at a model server (the ``openai`` backend's ``base_url``); that
server receives the role's prompts and, with an API key, a bearer token.  Two settings
bound it (``inftool_web/settings.py``):

- ``INFTOOL_MODEL_HOSTS``: the hosts a base_url may name; any other is refused when the
  config is made and again when a worker builds the backend (a config edited since);
- ``INFTOOL_API_KEY_HOSTS``: for each key's variable, the one host it was configured for;
  a key is sent to that host only, never to whatever host a config names.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from django.conf import settings

# An iteration may name the variable holding a role's API key, never any other variable: a
# config naming SECRET_KEY or DATABASE_URL would send it to the base_url as a bearer token.
API_KEY_ENV_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,100}_API_KEY$")
DEFAULT_KEY_ENV = "INFTOOL_LLM_API_KEY"


def url_host(url: str) -> str:
    """The lower-case host name of ``url`` ("" when it has none or is not a URL)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def model_host_problem(url: str) -> str | None:
    """Why ``url``'s host may not receive model requests, or None."""
    host = url_host(url)
    allowed = {h.lower().strip("[]") for h in settings.INFTOOL_MODEL_HOSTS}
    if host and host in allowed:
        return None
    return (f"model host {host[:80]!r} is not allowed; allowed: {', '.join(sorted(allowed)) or 'none'} "
            "(INFTOOL_MODEL_HOSTS)")


def api_key_problem(base_url: str, api_key_env: str) -> str | None:
    """Why the key in ``api_key_env`` may not go to ``base_url``, or None."""
    if not API_KEY_ENV_RE.match(api_key_env):
        return (f"api_key_env must name an environment variable ending in _API_KEY "
                f"(such as {DEFAULT_KEY_ENV}), not {api_key_env[:40]!r}")
    bound = settings.INFTOOL_API_KEY_HOSTS.get(api_key_env, "").lower()
    if not bound:
        return f"{api_key_env} is bound to no host (INFTOOL_API_KEY_HOSTS); it is sent nowhere"
    if bound != url_host(base_url):
        return f"{api_key_env} may be sent to {bound} only, not to {url_host(base_url)[:80]!r}"
    return None


def api_key_for(*, base_url: str, api_key_env: str | None = None) -> str:
    """The bearer token to send to ``base_url``: the named key (default: the server's own),
    when it is bound to that host; "" otherwise, so that no key leaves for another host."""
    name = api_key_env or DEFAULT_KEY_ENV
    if api_key_problem(base_url, name):
        return ""
    if name == DEFAULT_KEY_ENV:
        return settings.INFTOOL_LLM_API_KEY
    return os.environ.get(name, "")
