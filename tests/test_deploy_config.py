"""Offline checks of the deployment files in deploy/ (no cluster, no Docker engine).

Kubernetes manifests against the API schemas (kubernetes-validate, strict), plus our own
policies: probes and limits on every Deployment, non-root, no inline secrets, no open
HTTP API, no CORS '*', telemetry off. The compose file, the nginx config (its loopback
variant with `nginx -t` when nginx is installed), the endpoints/credentials files as Rasa
reads them, and the Dockerfile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.needs import missing

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.28.0"
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|PRIVATE", re.IGNORECASE)
PROD_ENV = {
    "ACTION_SERVER_URL": "http://actions:5055/webhook",
    "DB_HOST": "postgres",
    "DB_PORT": "5432",
    "DB_NAME": "hip_triage",
    "DB_USER": "rasa",
    "DB_PASSWORD": "pw",
    "REDIS_HOST": "redis",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "",
    "REDIS_DB": "1",
    "DB_SSLMODE": "verify-full",
    "DB_SSLROOTCERT": "/certs/ca.crt",
    "REDIS_TLS": "true",
    "REDIS_CA_CERTS": "/certs/ca.crt",
}


def k8s_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = k8s_docs()


def of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec["containers"] + spec.get("initContainers", [])


def all_deploy_text() -> str:
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return "\n".join(p.read_text(errors="replace") for p in files)


# ------------------------------------------------------------------------ Kubernetes
@pytest.mark.parametrize(
    "name,doc", DOCS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS]
)
def test_manifest_matches_kubernetes_schema(name, doc):
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {error.message}")


def test_expected_objects_exist():
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCS}
    for wanted in [
        ("Namespace", "hip-triage"),
        ("Deployment", "rasa"),
        ("Deployment", "actions"),
        ("Deployment", "web"),
        ("Service", "rasa"),
        ("Service", "actions"),
        ("Service", "web"),
        ("Service", "web-internal"),
        ("HorizontalPodAutoscaler", "rasa"),
    ]:
        assert wanted in kinds, wanted


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_policies(deployment):
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod.get("automountServiceAccountToken") is False, name
    pod_sc = pod.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True, name
    assert pod_sc.get("runAsUser", 0) > 0, name
    assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
    for container in containers(deployment):
        where = f"{name}/{container['name']}"
        assert container.get("readinessProbe"), f"{where}: no readinessProbe"
        assert container.get("livenessProbe"), f"{where}: no livenessProbe"
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                assert resources.get(part, {}).get(resource), f"{where}: no {part}.{resource}"
        sc = container.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("runAsNonRoot") is True, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not sc.get("privileged"), where
        image = container["image"]
        assert ":" in image and not image.endswith(":latest"), f"{where}: unpinned {image}"


def test_rasa_probes_use_health_check_for_readiness_only():
    rasa = next(d for d in of_kind("Deployment") if d["metadata"]["name"] == "rasa")
    (container,) = containers(rasa)
    assert container["readinessProbe"]["httpGet"]["path"] == "/webhooks/health/"
    # A database outage must take pods out of service, not restart them.
    assert container["livenessProbe"]["httpGet"]["path"] == "/"
    assert (
        container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"]
        >= 120
    )


def test_no_inline_secrets_in_manifests():
    assert not of_kind("Secret"), "Secrets are created out of band, never committed"
    for deployment in of_kind("Deployment"):
        for container in containers(deployment):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env, f"{env['name']} inlined"
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "hip-triage-secrets"
    for line in (K8S / "settings.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            assert not SECRET_NAME.search(key) or key == "TELEGRAM_BOT_NAME", key


def test_rasa_api_closed_and_telemetry_off_in_manifests():
    for deployment in of_kind("Deployment"):
        for container in containers(deployment):
            args = container.get("args", []) + container.get("command", [])
            assert "--enable-api" not in args or {"--auth-token", "--jwt-secret"} & set(args)
            assert "*" not in args
    rasa = next(d for d in of_kind("Deployment") if d["metadata"]["name"] == "rasa")
    env = {e["name"]: e.get("value") for e in containers(rasa)[0]["env"]}
    assert env["RASA_TELEMETRY_ENABLED"] == "false"


def test_services_select_pods_and_ports():
    deployments = of_kind("Deployment")
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matching = [
            d
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matching, f"Service {service['metadata']['name']} selects no Deployment"
        ports = {p.get("name") for d in matching for c in containers(d) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    public = next(s for s in of_kind("Service") if s["metadata"]["name"] == "web")
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["public"]
    rasa = next(s for s in of_kind("Service") if s["metadata"]["name"] == "rasa")
    assert rasa["spec"]["clusterIP"] == "None", "nginx resolves the pods (headless)"


def test_hpa_targets_existing_deployments():
    names = {d["metadata"]["name"] for d in of_kind("Deployment")}
    for hpa in of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in names
        assert 1 < hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_namespace_enforces_restricted_pod_security():
    (namespace,) = of_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kustomization_references_exist():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (DEPLOY / resource).is_file(), resource
    assert {p.relative_to(DEPLOY).as_posix() for p in K8S.glob("*.yaml")} == set(
        kustomization["resources"]
    )
    generated = set()
    for generator in kustomization["configMapGenerator"]:
        generated.add(generator["name"])
        for entry in generator.get("files", []) + generator.get("envs", []):
            assert (DEPLOY / entry.split("=")[-1]).is_file(), entry
    used = set()
    for deployment in of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        used |= {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
        for container in containers(deployment):
            used |= {e["configMapRef"]["name"] for e in container.get("envFrom", [])}
    assert used <= generated, used - generated
    images = {image["name"] for image in kustomization["images"]}
    for deployment in of_kind("Deployment"):
        for container in containers(deployment):
            assert container["image"].split(":")[0] in images


def test_settings_cover_every_variable_the_prod_files_read():
    settings = {
        line.split("=", 1)[0]
        for line in (K8S / "settings.env").read_text().splitlines()
        if line and not line.startswith("#")
    }
    rasa = next(d for d in of_kind("Deployment") if d["metadata"]["name"] == "rasa")
    provided = settings | {e["name"] for e in containers(rasa)[0]["env"]}
    endpoints = re.sub(r"#[^\n]*", "", (DEPLOY / "endpoints.prod.yml").read_text())
    needed = set(re.findall(r"\$\{(\w+)\}", endpoints))
    needed |= set(re.findall(r"\$\((\w+)\)", " ".join(containers(rasa)[0]["args"])))
    assert needed <= provided, needed - provided


# ------------------------------------------------------------------- Rasa config files
def read_rasa_config(path: Path, env: dict) -> dict:
    """Reads a file as `rasa run` does (with ${VAR} substitution), in a subprocess."""
    code = (
        "import json, sys, rasa.shared.utils.io as io;"
        "print(json.dumps(io.read_config_file(sys.argv[1])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        timeout=60,
    )
    if result.returncode:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


def test_endpoints_prod_read_from_environment():
    config = read_rasa_config(DEPLOY / "endpoints.prod.yml", PROD_ENV)
    store = config["tracker_store"]
    assert store["type"] == "store.tracker_store.ClinicTrackerStore"
    assert store["dialect"] == "postgresql"
    assert store["url"] == "postgres" and store["password"] == "pw" and store["port"] == "5432"
    assert config["lock_store"]["type"] == "redis"
    assert config["lock_store"]["url"] == "redis"
    assert config["action_endpoint"]["url"] == PROD_ENV["ACTION_SERVER_URL"]
    assert store["query"] == {"sslmode": "verify-full", "sslrootcert": "/certs/ca.crt"}
    assert config["lock_store"]["use_ssl"] == "true"


def test_tls_is_the_default_in_every_deployment():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["x-rasa-env"]
    assert compose["DB_SSLMODE"] == "${DB_SSLMODE:-verify-full}"
    assert compose["REDIS_TLS"] == "${REDIS_TLS-true}"
    settings = dict(
        line.split("=", 1)
        for line in (DEPLOY / "k8s" / "settings.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert settings["DB_SSLMODE"] == "verify-full" and settings["REDIS_TLS"] == "true"
    assert settings["DB_SSLROOTCERT"] == settings["REDIS_CA_CERTS"] != ""


def test_endpoints_prod_refuses_unset_variables():
    env = dict(PROD_ENV)
    del env["DB_PASSWORD"]
    with pytest.raises(RuntimeError, match="DB_PASSWORD"):
        read_rasa_config(DEPLOY / "endpoints.prod.yml", env)


def test_prod_files_keep_env_references_unquoted():
    # Rasa substitutes ${VAR} only in plain (unquoted) YAML scalars.
    for name in ("endpoints.prod.yml", "credentials.prod.yml", "credentials.prod-telegram.yml"):
        for line in (DEPLOY / name).read_text().splitlines():
            if "${" in line and not line.lstrip().startswith("#"):
                value = line.split(":", 1)[1].strip()
                assert not value.startswith(("'", '"')), f"{name}: {line}"


def test_dev_default_unchanged():
    # `make run` keeps SQLite and the in-memory lock store.
    config = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    assert config["tracker_store"]["dialect"] == "sqlite"
    assert "lock_store" not in config


def test_every_credentials_file_has_the_guarded_channels():
    paths = [*ROOT.glob("credentials*.yml"), *DEPLOY.glob("credentials*.yml")]
    assert len(paths) == 4
    for path in paths:
        creds = yaml.safe_load(path.read_text())
        assert "rest" not in creds, f"{path.name}: the strict REST channel, not Rasa's own"
        assert "channels.rest.ClinicRestInput" in creds, path.name
        assert "channels.health.HealthInput" in creds, f"{path.name}: message guard, health"


def test_prod_credentials():
    for name in ("credentials.prod.yml", "credentials.prod-telegram.yml"):
        creds = yaml.safe_load((DEPLOY / name).read_text())
        assert "rest" not in creds, "the strict REST channel, not Rasa's own"
        assert "channels.rest.ClinicRestInput" in creds
        assert "channels.health.HealthInput" in creds
        assert "socketio" not in creds, "Rasa's own socket.io channel lets a client pick its id"
        widget = creds["channels.socketio.ClinicSocketIOInput"]
        assert widget["cors_allowed_origins"] == "${WEB_ORIGINS}"
    telegram = yaml.safe_load((DEPLOY / "credentials.prod-telegram.yml").read_text())
    assert telegram["channels.telegram.SecureTelegramInput"]["secret_token"].startswith("${")


def test_session_config_is_as_documented():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    session = domain["session_config"]
    assert session["carry_over_slots_to_new_session"] is False
    assert session["session_expiration_time"] == 60
    assert "60 minutes" in (ROOT / "docs" / "deployment.md").read_text()


# ----------------------------------------------------------------------------- compose
COMPOSE = DEPLOY / "docker-compose.yml"


def test_compose_services_health_and_exposure():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"rasa", "actions", "postgres", "redis", "web"} <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
    for name in ("rasa", "actions", "postgres", "redis"):
        assert "ports" not in services[name], f"{name} must not be published"
    ports = services["web"]["ports"]
    internal = [p for p in ports if p.endswith(":8081")]
    assert internal and all(p.startswith("127.0.0.1:") for p in internal)
    assert services["rasa"]["deploy"]["replicas"] and services["actions"]["deploy"]["replicas"]
    assert services["rasa"]["environment"]["RASA_TELEMETRY_ENABLED"] == "false"
    for name, service in services.items():
        env = service.get("environment", {})
        for key, value in env.items():
            if SECRET_NAME.search(key) and value:
                assert str(value).startswith("${"), f"{name}.{key} is inlined"
    command = services["rasa"]["command"]
    assert "--enable-api" not in command and "*" not in command
    for name in ("rasa", "actions", "web"):
        assert services[name].get("read_only") is True, name
        assert services[name].get("cap_drop") == ["ALL"], name


def test_compose_config_validates_when_a_client_is_installed(tmp_path):
    if shutil.which("docker-compose"):
        args = ["docker-compose"]
    elif (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        args = ["docker", "compose"]
    else:
        pytest.skip("no docker compose client (validated by the structural test above)")
    env = {"PATH": os.environ["PATH"], "DB_PASSWORD": "x", "REDIS_PASSWORD": "y"}
    result = subprocess.run(
        [*args, "-f", str(COMPOSE), "--project-directory", str(DEPLOY), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------- nginx
NGINX = DEPLOY / "nginx" / "nginx.conf"


def blocks(text: str, head: str) -> list[str]:
    """The bodies of every `head {...}` block (brace-matched)."""
    return [body for _, body in headed_blocks(text, head)]


def headed_blocks(text: str, head: str) -> list[tuple[str, str]]:
    """(the text matched by `head`, body) of every `head {...}` block."""
    text = re.sub(r"#[^\n]*", "", text)
    found = []
    for match in re.finditer(rf"(?m)^\s*({head})\s*\{{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found.append((match.group(1), text[match.end() : i - 1]))
    return found


def test_nginx_public_listener_exposes_only_widget_socketio_telegram():
    servers = blocks(NGINX.read_text(), "server")
    public = next(s for s in servers if "listen 8080;" in s)
    internal = next(s for s in servers if "listen 8081;" in s)
    proxied = [
        head.split(None, 1)[1]
        for head, body in headed_blocks(public, r"location\s+[^{]*?")
        if "proxy_pass" in body
    ]
    assert sorted(proxied) == ["/socket.io/", "= /webhooks/telegram/webhook"]
    assert "location ^~ /webhooks/" in public and "return 404" in public
    assert "conversations|model|status" in public
    assert "limit_req zone=" in public and "limit_conn " in public
    assert "= /webhooks/rest/webhook" in internal
    assert "limit_req zone=" not in internal


def test_nginx_upstreams_and_limits():
    text = NGINX.read_text()
    http = blocks(text, "http")[0]
    assert re.search(r"client_max_body_size \d+k;", http)
    assert "limit_req_zone $binary_remote_addr" in http
    socketio = blocks(text, r"upstream rasa_socketio")[0]
    assert "hash $remote_addr consistent;" in socketio or "ip_hash;" in socketio
    rest = blocks(text, r"upstream rasa_rest")[0]
    assert "hash" not in rest, "REST is round-robin"
    assert "Upgrade $http_upgrade" in text


def test_nginx_loopback_variant_passes_nginx_t(tmp_path):
    from tests.scale.nginx_variant import loopback_variant

    widget = {"demo": ROOT / "widget" / "demo", "src": ROOT / "widget" / "src",
              "vendor": tmp_path}  # fmt: skip
    conf = loopback_variant(NGINX.read_text(), rasa_ports=[15005, 15006], public_port=18080,
                            internal_port=18081, workdir=tmp_path, widget_dirs=widget)  # fmt: skip
    assert conf.count("server 127.0.0.1:15006") == 2
    if not shutil.which("nginx"):
        missing("nginx not installed (apt-get install nginx)")
    (tmp_path / "nginx.conf").write_text(conf)
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# -------------------------------------------------------------------------- Dockerfile
def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.10[.\d]*-slim", text)
    stages = re.split(r"(?m)^FROM ", text)[1:]
    final = {s.split("\n")[0].split()[-1]: s for s in stages if " AS " in s.split("\n")[0]}
    for stage in ("rasa", "actions"):
        assert re.search(r"(?m)^USER 1001", final[stage]), f"{stage} runs as root"
        assert "HEALTHCHECK" in final[stage]
    assert "RASA_TELEMETRY_ENABLED=false" in final["rasa"]
    assert "-c constraints.txt" in text and "-c /tmp/constraints.txt" in text
    assert "--enable-api" not in text.replace("No --enable-api", "")
    constraints = [
        line
        for line in (DEPLOY / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", line) for line in constraints)
    assert "rasa==3.6.21" in constraints and "rasa-sdk==3.6.2" in constraints
    assert (DEPLOY / "Dockerfile.dockerignore").read_text().count(".venv")


def local_imports(packages: set[str]) -> set[str]:
    """The project's own packages that `packages` import, directly or through each other."""
    local = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    found, todo = set(packages), list(packages)
    while todo:
        for source in (ROOT / todo.pop()).rglob("*.py"):
            names = re.findall(r"(?m)^\s*(?:from|import)\s+(\w+)", source.read_text())
            for name in set(names) & local - found:
                found.add(name)
                todo.append(name)
    return found


def test_rasa_image_has_every_local_package_rasa_imports():
    stages = re.split(r"(?m)^FROM ", (DEPLOY / "Dockerfile").read_text())
    rasa = next(s for s in stages if s.split("\n")[0].endswith(" AS rasa"))
    build = next(s for s in stages if s.split("\n")[0].endswith(" AS rasa-build"))
    served = local_imports({"components", "channels", "store"})
    assert {"triage", "patches"} <= served  # the NLU component; the patches component
    for package in served:
        assert f"COPY {package} ./{package}" in rasa, f"rasa image lacks {package}/"
    for package in local_imports({"components"}):
        assert f"COPY {package} ./{package}" in build, f"training stage lacks {package}/"
    actions = next(s for s in stages if s.split("\n")[0].endswith(" AS actions"))
    for package in local_imports({"actions"}):
        assert f"COPY {package} ./{package}" in actions, f"action image lacks {package}/"


def test_no_wildcard_cors_or_default_tokens_anywhere():
    text = all_deploy_text()
    assert not re.search(r"--cors\s*[\"']?\*|cors:\s*[\"']\*", text)
    assert "rasaToken" not in text
    assert not re.search(r"RASA_TELEMETRY_ENABLED\s*[:=]\s*[\"']?true", text, re.IGNORECASE)


def test_retention_purge_runs_nightly_with_the_shipped_tool():
    (cron,) = of_kind("CronJob")
    job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert "scripts.tracker_admin" in container["args"][0] and "purge" in container["args"][0]
    assert container["image"].startswith("hip-triage-rasa:")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    settings = (K8S / "settings.env").read_text()
    assert re.search(r"^RETENTION_DAYS=\d+$", settings, re.M)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "scripts/tracker_admin.py" in dockerfile


def test_action_server_image_runs_the_loopback_by_default_server():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    actions_stage = dockerfile.split("AS actions\n", 1)[1].split("FROM ", 1)[0]
    assert 'ENTRYPOINT ["python", "scripts/action_server.py"]' in actions_stage
    assert "ACTIONS_HOST=0.0.0.0" in actions_stage
