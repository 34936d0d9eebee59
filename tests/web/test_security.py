"""Production hardening: `check --deploy`, loud failures on missing secrets, log-in and API
rate limits (and what happens when Redis is down), CSRF on log-in, and that nothing but
health and log-in is reachable without signing in."""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
import sys
import uuid

import pytest
import redis
from django.conf import settings
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from inftool_web.core import ratelimit
from inftool_web.core.throttles import ApiUserRateThrottle
from tests.conftest import ROOT, worker_env
from tests.factories import UserFactory
from tests.web.scenario import run_scenario

LOGIN_URL = "/accounts/login/"
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory's
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


# ---------------------------------------------------------------------------- production settings


def production_env(**extra: str) -> dict[str, str]:
    env = worker_env(
        DJANGO_SETTINGS_MODULE="inftool_web.settings",
        INFTOOL_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="example.com",
    )
    env.pop("DEBUG", None)
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_check_deploy_is_clean_with_production_settings():
    run = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no issues" in run.stdout


def test_production_without_secret_key_fails_naming_it():
    env = production_env()
    del env["SECRET_KEY"]
    run = manage("check", env=env)
    assert run.returncode != 0
    assert "SECRET_KEY" in run.stderr.strip().splitlines()[-1]


def test_production_with_debug_on_fails_naming_it():
    run = manage("check", env=production_env(DEBUG="true"))
    assert run.returncode != 0
    assert "DEBUG" in run.stderr.strip().splitlines()[-1]


def bare_env(**extra: str) -> dict[str, str]:
    """What a bare `manage.py` sees on a machine that set nothing: no INFTOOL_ENV, DEBUG,
    SECRET_KEY or ALLOWED_HOSTS (the test database and broker stay, so that it can start)."""
    env = worker_env(DJANGO_SETTINGS_MODULE="inftool_web.settings")
    for name in ("INFTOOL_ENV", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"):
        env.pop(name, None)
    env.update(extra)
    return env


SHOW = "from django.conf import settings as s; print(s.ENVIRONMENT, s.DEBUG, s.SECRET_KEY[:14])"


def test_a_bare_manage_py_is_production_and_fails_naming_what_to_set():
    run = manage("check", env=bare_env())
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "SECRET_KEY is not set" in last and "INFTOOL_ENV=local" in last, last
    run = manage("check", env=bare_env(SECRET_KEY=secrets.token_urlsafe(64)))
    assert run.returncode != 0 and "ALLOWED_HOSTS is not set" in run.stderr.strip().splitlines()[-1]


def test_debug_is_on_only_where_asked_for():
    key = secrets.token_urlsafe(64)
    run = manage("shell", "-v", "0", "-c", SHOW, env=bare_env(SECRET_KEY=key, ALLOWED_HOSTS="example.com"))
    assert run.stdout.split() == ["production", "False", key[:14]], run.stderr[-2000:]
    run = manage("shell", "-v", "0", "-c", SHOW, env=bare_env(INFTOOL_ENV="local"))
    assert run.stdout.split()[:2] == ["local", "False"], run.stderr[-2000:]
    run = manage("shell", "-v", "0", "-c", SHOW, env=bare_env(INFTOOL_ENV="local", DEBUG="true"))
    assert run.stdout.split()[:2] == ["local", "True"], run.stderr[-2000:]


def test_make_says_local_for_its_targets_and_turns_debug_on_for_run_only():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^export INFTOOL_ENV \?= local$", makefile, re.M)
    assert makefile.count("DEBUG=") == 1
    run = makefile[makefile.index("\nrun:"):]
    assert re.match(r"\nrun: setup\n\tDEBUG=\$\$\{DEBUG:-true\} \$\(PY\) manage.py runstack\n", run)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with no counts in the test Redis database."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{ratelimit.KEY_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    ratelimit._last_warning = 0.0
    yield


_FALLBACK_LOGIN_TEMPLATE = (
    "{% for m in messages %}<p>{{ m }}</p>{% endfor %}"
    "<form method='post'>{% csrf_token %}{{ form.non_field_errors }}{{ form.as_p }}"
    "<input type='hidden' name='next' value='{{ next }}'></form>"
)


@pytest.fixture
def login_template():
    """The project's registration/login.html, or a minimal stand-in while it does not exist."""
    try:
        get_template("registration/login.html")
    except TemplateDoesNotExist:
        base = settings.TEMPLATES[0]
        options = {k: v for k, v in base["OPTIONS"].items() if k != "loaders"}
        options["loaders"] = [
            ("django.template.loaders.locmem.Loader", {"registration/login.html": _FALLBACK_LOGIN_TEMPLATE}),
            "django.template.loaders.filesystem.Loader",
            "django.template.loaders.app_directories.Loader",
        ]
        with override_settings(TEMPLATES=[{**base, "APP_DIRS": False, "OPTIONS": options}]):
            yield
        return
    yield


def post_login(client: Client, username: str, password: str, **extra):
    return client.post(LOGIN_URL, {"username": username, "password": password}, **extra)


# ---------------------------------------------------------------------------- the limiter itself


@pytest.mark.parametrize("text,limit,period", [
    ("10/min", 10, 60), ("600/m", 600, 60), ("5/second", 5, 1), ("3/5m", 3, 300),
    ("100/h", 100, 3600), ("2/day", 2, 86400), (" 7 / MIN ", 7, 60),
])
def test_rate_parse(text, limit, period):
    assert ratelimit.Rate.parse(text) == ratelimit.Rate(limit, period)


@pytest.mark.parametrize("text", ["", "10", "ten/min", "10/fortnight", "0/min", "-1/min"])
def test_rate_parse_rejects_bad_rates_saying_how_to_write_one(text):
    with pytest.raises(ValueError, match=r"<count>/<period>.*'10/min'"):
        ratelimit.Rate.parse(text)


def test_hit_counts_per_scope_key_and_window():
    rate = ratelimit.Rate(2, 60)
    now = 1_000_000 * 60 + 10.0
    assert [ratelimit.hit("t", "a", rate, now=now).allowed for _ in range(3)] == [True, True, False]
    refused = ratelimit.hit("t", "a", rate, now=now)
    assert (refused.count, refused.remaining, refused.retry_after) == (4, 0, 50)
    assert ratelimit.hit("t", "b", rate, now=now).allowed, "another key has its own budget"
    assert ratelimit.hit("other", "a", rate, now=now).allowed, "another scope has its own budget"
    assert ratelimit.hit("t", "a", rate, now=now + 60).allowed, "the next window starts afresh"


def test_hit_keys_expire_with_their_window():
    ratelimit.hit("t", "expiry", "5/min")
    client = redis.Redis.from_url(settings.REDIS_URL)
    (key,) = client.keys(f"{ratelimit.KEY_PREFIX}t:*")
    assert 0 < client.ttl(key) <= 61
    client.close()


def test_limiter_fails_open_with_a_warning_when_redis_is_unreachable(caplog):
    with caplog.at_level(logging.WARNING, logger="inftool_web.core.ratelimit"):
        decisions = [ratelimit.hit("t", "a", "1/min", url=UNREACHABLE_REDIS) for _ in range(5)]
    assert all(d.allowed and d.degraded for d in decisions)
    warnings = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert len(warnings) == 1, "one warning per interval, not one per request"


def test_client_ip_trusts_only_our_own_proxies():
    rf = RequestFactory()
    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    with override_settings(INFTOOL_NUM_PROXIES=0):
        assert ratelimit.client_ip(request) == "10.0.0.5"
    with override_settings(INFTOOL_NUM_PROXIES=1):
        assert ratelimit.client_ip(request) == "203.0.113.9", "the client-written 6.6.6.6 is ignored"
    with override_settings(INFTOOL_NUM_PROXIES=2):
        assert ratelimit.client_ip(request) == "6.6.6.6"
    with override_settings(INFTOOL_NUM_PROXIES=1):
        assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="10.0.0.5")) == "10.0.0.5"


# ---------------------------------------------------------------------------- log-in


@pytest.mark.django_db
@override_settings(INFTOOL_LOGIN_RATE_PER_USERNAME="3/day", INFTOOL_LOGIN_RATE_PER_IP="1000/day")
def test_login_answers_429_after_too_many_attempts_for_one_username(client, login_template):
    user = UserFactory(username=f"alice-{uuid.uuid4().hex[:6]}")
    for _ in range(3):
        response = post_login(client, user.username, "wrong")
        assert response.status_code == 200
        assert not response.wsgi_request.user.is_authenticated
    response = post_login(client, user.username, "wrong")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many log-in attempts" in response.content.decode()
    # The right password is refused too while limited: it is never checked.
    response = post_login(client, user.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Case variants of the name share its budget.
    assert post_login(client, user.username.upper(), "wrong").status_code == 429
    # Another user from the same address is unaffected.
    other = UserFactory(username=f"bob-{uuid.uuid4().hex[:6]}")
    response = post_login(client, other.username, PASSWORD)
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(other.pk)


@pytest.mark.django_db
@override_settings(INFTOOL_LOGIN_RATE_PER_USERNAME="1000/day", INFTOOL_LOGIN_RATE_PER_IP="3/day",
                   INFTOOL_NUM_PROXIES=1)
def test_login_answers_429_after_too_many_attempts_from_one_address(client, login_template):
    for i in range(3):
        assert post_login(client, f"guess{i}", "x", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 200
    response = post_login(client, "guess9", "x", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert response.status_code == 429
    # A forged left-hand X-Forwarded-For entry does not buy a fresh budget.
    response = post_login(client, "guess9", "x", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    assert response.status_code == 429
    assert post_login(client, "guess9", "x", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 200


@pytest.mark.django_db
@override_settings(INFTOOL_LOGIN_RATE_PER_USERNAME="2/day", INFTOOL_LOGIN_RATE_PER_IP="2/day",
                   REDIS_URL=UNREACHABLE_REDIS)
def test_login_still_works_when_redis_is_down(client, login_template, caplog):
    user = UserFactory(username=f"carol-{uuid.uuid4().hex[:6]}")
    with caplog.at_level(logging.WARNING, logger="inftool_web.core.ratelimit"):
        for _ in range(5):
            assert post_login(client, user.username, "wrong").status_code == 200
        response = post_login(client, user.username, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert any("rate limiting is off" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_login_form_enforces_csrf(login_template):
    user = UserFactory(username=f"dave-{uuid.uuid4().hex[:6]}")
    client = Client(enforce_csrf_checks=True)
    assert post_login(client, user.username, PASSWORD).status_code == 403
    assert "_auth_user_id" not in client.session
    form = client.get(LOGIN_URL)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())
    assert token, "the log-in page must carry the CSRF token"
    response = client.post(LOGIN_URL, {"username": user.username, "password": PASSWORD,
                                       "csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


# ---------------------------------------------------------------------------- API throttle


class _Echo(APIView):
    throttle_classes = [ApiUserRateThrottle]

    def get(self, request):
        return Response({"user": request.user.pk})


@pytest.mark.django_db
@override_settings(INFTOOL_API_RATE="2/day")
def test_api_throttle_limits_each_user_across_session_and_token():
    alice, bob = UserFactory(), UserFactory()
    factory = APIRequestFactory()
    view = _Echo.as_view()

    def call(user):
        request = factory.get("/echo")
        force_authenticate(request, user=user)
        return view(request)

    assert [call(alice).status_code for _ in range(2)] == [200, 200]
    refused = call(alice)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert call(bob).status_code == 200, "users have separate budgets"

    # A token of the same user draws on the same budget, through real token authentication.
    token = Token.objects.create(user=alice)
    request = factory.get("/echo", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert view(request).status_code == 429


@pytest.mark.django_db
@override_settings(INFTOOL_LOGIN_RATE_PER_USERNAME="2/day", INFTOOL_LOGIN_RATE_PER_IP="1000/day")
def test_token_endpoint_has_the_login_limits():
    from inftool_web.core.views_auth import obtain_auth_token

    user = UserFactory(username=f"frank-{uuid.uuid4().hex[:6]}")
    factory = APIRequestFactory()

    def attempt(password):
        return obtain_auth_token(factory.post("/token", {"username": user.username, "password": password},
                                              format="json"))

    assert [attempt("wrong").status_code for _ in range(2)] == [400, 400]
    refused = attempt(PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert not Token.objects.filter(user=user).exists()


@pytest.mark.django_db
@override_settings(INFTOOL_LOGIN_RATE_PER_USERNAME="2/day", INFTOOL_LOGIN_RATE_PER_IP="1000/day")
def test_wired_token_endpoint_cannot_bypass_the_rate_limit():
    user = UserFactory(username=f"gina-{uuid.uuid4().hex[:6]}")
    client = APIClient()
    for _ in range(2):
        client.post("/api/auth/token/", {"username": user.username, "password": "wrong"}, format="json")
    response = client.post("/api/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 429


@pytest.mark.django_db
@override_settings(INFTOOL_API_RATE="1/day", REDIS_URL=UNREACHABLE_REDIS)
def test_api_throttle_fails_open_when_redis_is_down():
    user = UserFactory()
    view = _Echo.as_view()
    factory = APIRequestFactory()
    for _ in range(3):
        request = factory.get("/echo")
        force_authenticate(request, user=user)
        assert view(request).status_code == 200


# ---------------------------------------------------------------------------- every URL needs a login

PUBLIC = {
    "healthz": "load balancers and orchestrators call it; it reveals no data",
    "accounts/login/": "the log-in form",
    "admin/login/": "the admin's own log-in form",
    "api/auth/token/": "username and password in, token out: a log-in",
}
_SAMPLES = {"int": "1", "str": "x", "slug": "x", "uuid": str(uuid.UUID(int=1)), "path": "x/y"}


def _sample_route(route: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: _SAMPLES.get(m.group(1) or "str", "1"), route)


def _sample_regex(regex: str) -> str:
    def group(m: re.Match) -> str:
        body = m.group(2)
        if re.fullmatch(r"[\w-]+(\|[\w-]+)*", body):
            return body.split("|")[0]
        return "1" if "\\d" in body or "0-9" in body else "x"

    text = regex.lstrip("^").rstrip("$").replace("\\Z", "")
    text = re.sub(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", group, text)
    text = re.sub(r"\(\?:[^()]*\)\??", "", text)
    return text.replace("\\.", ".").replace("\\", "")


def url_samples(patterns=None, prefix: str = "") -> list[str]:
    """One concrete path for each URL pattern, with ids and slugs filled in."""
    paths = []
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        raw = str(p.pattern)
        piece = _sample_regex(raw) if p.pattern.__class__.__name__ == "RegexPattern" else _sample_route(raw)
        if isinstance(p, URLResolver):
            paths += url_samples(p.url_patterns, prefix + piece)
        elif isinstance(p, URLPattern):
            paths.append(prefix + piece)
    return sorted(set(paths))


def _asks_for_login(client: Client, response, hops: int = 3) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code in (301, 302, 303, 307, 308) and hops:
        location = response["Location"]
        if location.startswith(settings.LOGIN_URL) or location.startswith("/admin/login/"):
            return True
        # e.g. the admin's logout, which sends an anonymous visitor to the admin index first
        return location.startswith("/") and _asks_for_login(client, client.get(location), hops - 1)
    return False


@pytest.mark.django_db
def test_every_url_but_health_and_login_requires_authentication(login_template):
    samples = url_samples()
    assert len(samples) > 5
    static = settings.STATIC_URL.lstrip("/")
    client = Client()
    checked, open_urls = [], []
    for path in samples:
        if path in PUBLIC or path.startswith(static):
            continue
        url = "/" + path
        try:
            resolve(url)
        except Exception:  # noqa: BLE001 - a sample the heuristics got wrong is reported below
            open_urls.append(f"{url}: sample path does not resolve")
            continue
        answers = {method: getattr(client, method)(url) for method in ("get", "post")}
        denied = {m for m, r in answers.items() if _asks_for_login(client, r)}
        allowed = {m: r.status_code for m, r in answers.items() if m not in denied and r.status_code != 405}
        if allowed or not denied:
            open_urls.append(f"{url}: {allowed or {m: r.status_code for m, r in answers.items()}}")
        checked.append(url)
    assert not open_urls, "reachable without signing in:\n" + "\n".join(open_urls)
    assert checked


@pytest.mark.django_db
@override_settings(INFTOOL_LOGIN_RATE_PER_USERNAME="2/day", INFTOOL_LOGIN_RATE_PER_IP="1000/day")
def test_admin_login_cannot_bypass_the_rate_limit(client, login_template):
    user = UserFactory(username=f"erin-{uuid.uuid4().hex[:6]}", is_staff=True)
    for _ in range(2):
        post_login(client, user.username, "wrong")
    response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    assert "_auth_user_id" not in client.session, f"admin log-in succeeded ({response.status_code})"


# ---------------------------------------------------------------------------- roles

ROLE_PAGES = ["/", "/tools/", "/evaluations/", "/iterations/{it}/", "/trajectories/{t}/", "/trajectories/{t}/row/",
              "/trajectories/{t}/card/"]
ROLE_APIS = ["/api/tools/", "/api/personas/", "/api/iterations/", "/api/iterations/{it}/", "/api/trajectories/",
             "/api/trajectories/{t}/", "/api/evaluations/", "/api/exports/", "/api/exports/openai/",
             "/api/schema/", "/api/docs/"]


def _role_world():
    from tests.factories import IterationFactory, TrajectoryFactory

    t = TrajectoryFactory(iteration=IterationFactory())
    return {"it": t.iteration_id, "t": t.pk}


def _as(role: str | None):
    from inftool_web.core.roles import set_role

    user = UserFactory()
    if role:
        set_role(user, role)
    return user


@pytest.mark.django_db
def test_a_signed_in_user_without_a_role_reads_nothing():
    ids = _role_world()
    client = Client()
    client.force_login(_as(None))
    for path in ROLE_PAGES:
        assert client.get(path.format(**ids)).status_code == 403, path
    token = Token.objects.create(user=_as(None))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    for path in ROLE_APIS:
        r = api.get(path.format(**ids))
        assert r.status_code == 403, (path, r.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize("role, may_read, may_audit, may_launch", [
    ("viewer", True, False, False), ("reviewer", True, True, False), ("operator", True, True, True),
])
def test_each_role_gets_exactly_its_rights(role, may_read, may_audit, may_launch):
    ids = _role_world()
    user = _as(role)
    client = Client()
    client.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    for path in ROLE_PAGES:
        assert (client.get(path.format(**ids)).status_code == 200) == may_read, path
    for path in ROLE_APIS:
        assert (api.get(path.format(**ids)).status_code == 200) == may_read, path
    assert (client.get("/audit/").status_code == 200) == may_audit
    audit = client.post(f"/trajectories/{ids['t']}/audit/", {"decision": "accept"})
    assert (audit.status_code == 302) == may_audit, audit.status_code
    assert (client.get("/iterations/new/").status_code == 200) == may_launch
    launch = api.post("/api/iterations/", {"config": {"count": 1}}, format="json")
    assert (launch.status_code == 201) == may_launch, launch.status_code
    cancel = api.post(f"/api/iterations/{ids['it']}/cancel/")
    assert (cancel.status_code == 200) == may_launch, cancel.status_code


# ---------------------------------------------------------------------------- CSRF


@pytest.mark.django_db
def test_every_form_post_needs_the_csrf_token():
    from tests.factories import IterationFactory

    ids = _role_world()
    running = IterationFactory(status="synthesizing")
    client = Client(enforce_csrf_checks=True)
    client.force_login(_as("operator"))
    posts = {
        "/iterations/new/": {"count": "1"},
        f"/iterations/{running.pk}/cancel/": {},
        f"/trajectories/{ids['t']}/audit/": {"decision": "accept"},
        "/accounts/logout/": {},
    }
    for path, data in posts.items():
        r = client.post(path, data)
        assert r.status_code == 403 and b"CSRF" in r.content, (path, r.status_code)
    running.refresh_from_db()
    assert running.status == "synthesizing"
    assert client.session.get("_auth_user_id"), "a forged log-out did not sign the user out"
    # With the token that every page carries (hx-headers on <body>), the same posts work.
    page = client.get("/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    r = client.post(f"/iterations/{running.pk}/cancel/", {}, HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 302


@pytest.mark.django_db
def test_the_api_needs_csrf_with_a_session_but_not_with_a_token():
    user = _as("operator")
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    r = browser.post("/api/iterations/", {"config": {"count": 1}}, format="json")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    token = Token.objects.create(user=user)
    script = APIClient(enforce_csrf_checks=True)
    script.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert script.post("/api/iterations/", {"config": {"count": 1}}, format="json").status_code == 201
    # The model endpoint takes bearer tokens only: a session cookie cannot ride a forged POST.
    r = browser.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert r.status_code == 401


# ---------------------------------------------------------------------------- websockets


def _ws(path: str, *, cookie: str | None = None, origin: str = "http://testserver"):
    from channels.testing import WebsocketCommunicator

    from inftool_web.asgi import application

    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.mark.django_db(transaction=True)
def test_websockets_admit_only_signed_in_users_who_may_read_what_they_follow():
    from channels.layers import get_channel_layer

    from inftool_web.core.events import iteration_group
    from tests.factories import IterationFactory

    it = IterationFactory()
    viewer = _session_cookie(_as("viewer"))
    no_role = _session_cookie(_as(None))

    async def refused(path, **kwargs) -> int | None:
        comm = _ws(path, **kwargs)
        connected, code = await comm.connect(timeout=10)
        await comm.disconnect()
        assert not connected, path
        return code

    async def scenario():
        for path in ("/ws/events/", f"/ws/iterations/{it.pk}/"):
            assert await refused(path) == 4401, "anonymous"
            assert await refused(path, cookie="sessionid=forged-or-expired") == 4401
            assert await refused(path, cookie=no_role) == 4403, "signed in, no role"
            # Another site's page cannot open a socket with the user's cookie.
            assert await refused(path, cookie=viewer, origin="https://evil.example") in (None, 1000, 403)
        assert await refused("/ws/iterations/99999999/", cookie=viewer) == 4404
        assert await refused("/ws/iterations/99999999999999999999/", cookie=viewer) == 4404

        comm = _ws(f"/ws/iterations/{it.pk}/", cookie=viewer)
        connected, _ = await comm.connect(timeout=10)
        assert connected
        await comm.send_to(text_data="not json {")  # ignored, the socket stays open
        await comm.send_to(text_data='{"subscribe": "iteration.1"}')
        await get_channel_layer().group_send(iteration_group(it.pk), {"type": "inftool.event", "event": {"n": 1}})
        assert await comm.receive_json_from(timeout=5) == {"n": 1}
        await comm.disconnect()

    run_scenario(scenario)


# ---------------------------------------------------------------------------- content security policy


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/tools/", "/audit/", "/evaluations/", "/accounts/login/"])
def test_pages_carry_a_policy_that_runs_no_inline_script(path):
    ids = _role_world()
    client = Client()
    client.force_login(_as("reviewer"))
    r = client.get(path)
    assert r.status_code == 200
    csp = _csp(r)
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"] and csp["base-uri"] == ["'none'"]
    r = client.get(f"/iterations/{ids['it']}/")
    assert "'unsafe-inline'" not in _csp(r)["script-src"]


def test_templates_hold_no_inline_script_or_event_handler():
    """What the policy would block must not be needed: every script comes from a file."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text, re.I) \
                or re.search(r"<style\b", text) or "javascript:" in text:
            offenders.append(path.name)
    assert offenders == []


@pytest.mark.django_db
def test_cancel_confirmation_comes_from_a_static_file():
    from tests.factories import IterationFactory

    it = IterationFactory(status="synthesizing")
    client = Client()
    client.force_login(_as("operator"))
    page = client.get(f"/iterations/{it.pk}/").content.decode()
    assert f'data-confirm="Cancel iteration #{it.number}?"' in page and "onsubmit" not in page
    assert "inftool/confirm.js" in page
    assert "dataset.confirm" in (ROOT / "static" / "inftool" / "confirm.js").read_text()


@pytest.mark.django_db
def test_csrf_cookie_is_httponly_and_forms_still_post(login_template):
    client = Client(enforce_csrf_checks=True)
    r = client.get(LOGIN_URL)
    cookie = client.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie["httponly"] is True
    # the token in the page (what htmx and forms send) still passes the check
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.content.decode()).group(1)
    user = _as("viewer")
    r = client.post(LOGIN_URL, {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    # htmx sends the page's token in a header set once on <body>
    page = client.get("/tools/").content.decode()
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', page)


@pytest.mark.django_db
def test_api_docs_load_their_script_from_a_url_not_inline():
    client = Client()
    client.force_login(_as("viewer"))
    r = client.get("/api/docs/")
    page = r.content.decode()
    assert r.status_code == 200 and "<script>" not in page
    assert _csp(r)["script-src"] == ["'self'"]
    script = re.search(r'<script src="([^"]+script=[^"]*)"', page).group(1).replace("&amp;", "&")
    js = client.get(script)
    assert js.status_code == 200 and "SwaggerUIBundle" in js.content.decode()


@pytest.mark.django_db(transaction=True)
def test_open_websockets_close_on_log_out_and_on_losing_the_role():
    """A socket outlives the page that opened it: log-out and a role taken away close it,
    as a new one would be refused; other sessions and other users stay connected."""
    from asgiref.sync import sync_to_async

    from inftool_web.core.roles import set_role

    viewer = _as("viewer")
    web = Client()
    web.force_login(viewer)
    this_session = f"{settings.SESSION_COOKIE_NAME}={web.cookies[settings.SESSION_COOKIE_NAME].value}"
    other_session = _session_cookie(viewer)
    bystander = _as("viewer")
    bystander_cookie = _session_cookie(bystander)

    async def open_socket(cookie):
        comm = _ws("/ws/events/", cookie=cookie)
        connected, _ = await comm.connect(timeout=10)
        assert connected
        return comm

    async def closed_with(comm) -> int:
        out = await comm.receive_output(timeout=5)
        assert out["type"] == "websocket.close", out
        return out["code"]

    async def scenario():
        mine, other, theirs = [await open_socket(c) for c in (this_session, other_session, bystander_cookie)]
        await sync_to_async(web.post)("/accounts/logout/")
        assert await closed_with(mine) == 4401
        assert await other.receive_nothing(timeout=0.5) and await theirs.receive_nothing(timeout=0.1)
        # a role change that keeps viewer's rights keeps the socket
        await sync_to_async(set_role)(viewer, "reviewer")
        assert await other.receive_nothing(timeout=0.5)
        await sync_to_async(viewer.groups.clear)()
        assert await closed_with(other) == 4403
        assert await theirs.receive_nothing(timeout=0.1)
        bystander.is_active = False
        await sync_to_async(bystander.save)()
        assert await closed_with(theirs) == 4401

    run_scenario(scenario)
