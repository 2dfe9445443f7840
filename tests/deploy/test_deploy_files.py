"""The deployment files parse, pass their schemas, and agree with the code's settings."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

from flowfleet.nginx import COMPOSE_API_PORT, nginx_binary, render_compose, render_local
from shared import metrics
from shared.settings import REPO_ROOT, Settings

K8S = REPO_ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30.0"
# Variables only docker compose reads (image, host port, credentials of its own services).
COMPOSE_ONLY = {"FLOWFLEET_HTTP_PORT", "FLOWFLEET_IMAGE", "FLOWFLEET_IMAGE_EXTRAS"}


def defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                docs.append((name, doc))
    return docs


def k8s_kind(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in k8s_documents() if d["kind"] == kind]
    if name is not None:
        found = [d for d in found if d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


# --- docker compose --------------------------------------------------------------------------


def test_compose_file_passes_the_compose_spec_schema() -> None:
    jsonschema.validate(compose(), get_builtin_schema("vendor.compose-spec"))


def test_compose_topology_scales_workers_and_waits_for_migrations() -> None:
    services = compose()["services"]
    assert {"nginx", "api", "worker", "redis", "postgres", "migrate", "llm-sim"} <= set(services)
    assert services["nginx"]["ports"] == ["${FLOWFLEET_HTTP_PORT:-8080}:8080"]
    assert services["api"]["deploy"]["replicas"] == 2
    # One worker container making one process per core (FLOWFLEET_WORKER_PROCESSES=0).
    assert services["worker"]["deploy"]["replicas"] == 1
    assert services["worker"]["command"] == ["worker", "--processes", "0"]
    for name in ("api", "worker"):
        service = services[name]
        # `--scale worker=N` needs neither a fixed name nor a published host port.
        assert "container_name" not in service
        assert "ports" not in service
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert service.get("restart") in {"unless-stopped", "no"}, name
    assert "--appendonly" in services["redis"]["command"]
    assert any(v.startswith("redis-data:") for v in services["redis"]["volumes"])
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])
    assert services["api"]["command"][-1] == str(COMPOSE_API_PORT)
    worker_env = services["worker"]["environment"]
    assert worker_env["FLOWFLEET_WORKER_METRICS_PORT"] == "9100"


def test_compose_profiles_monitoring_and_gpu() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana", "flower"):
        assert services[name]["profiles"] == ["monitoring"]
    vllm = services["vllm"]
    assert vllm["profiles"] == ["gpu"]
    device = vllm["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["capabilities"] == ["gpu"]
    backends = yaml.safe_load((REPO_ROOT / "deploy" / "backends" / "vllm.yaml").read_text())
    settings = Settings(_env_file=None, backends=backends["backends"])  # type: ignore[call-arg]
    assert settings.backends[0].base_url == "http://vllm:8000/v1"
    # The example flows ask for gpt-4o-mini: vLLM serves the small model under that name too.
    assert "gpt-4o-mini" in vllm["command"]


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(FLOWFLEET_[A-Z0-9_]+)=", text, re.MULTILINE))
    settings = {f"FLOWFLEET_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from .env.example"
    assert documented - settings - COMPOSE_ONLY == set(), ".env.example names unknown settings"
    compose_text = (REPO_ROOT / "docker-compose.yml").read_text()
    assert all(name in compose_text for name in COMPOSE_ONLY)


def test_dockerfile_is_non_root_with_a_cached_dependency_layer() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    copy_deps = next(i for i, line in enumerate(lines) if line.startswith("COPY pyproject.toml"))
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    copy_all = lines.index("COPY . .")
    assert copy_deps < install < copy_all
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert 'ENTRYPOINT ["python", "-m", "flowfleet"]' in lines
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


# --- nginx -------------------------------------------------------------------------------------


def test_committed_nginx_conf_is_the_rendered_template() -> None:
    committed = (REPO_ROOT / "nginx" / "nginx.conf").read_text()
    assert committed == render_compose(defaults()), "run: flowfleet nginx-conf > nginx/nginx.conf"


def test_nginx_conf_carries_the_api_contract() -> None:
    conf = (REPO_ROOT / "nginx" / "nginx.conf").read_text()
    assert f"client_max_body_size {defaults().max_body_bytes};" in conf
    assert defaults().max_body_bytes == 1024 * 1024  # 1m
    assert "resolver 127.0.0.11 valid=10s" in conf
    assert f"server api:{COMPOSE_API_PORT} resolve" in conf
    assert "zone flowfleet_api" in conf
    assert "keepalive 64;" in conf
    assert 'proxy_set_header Connection "";' in conf
    read_timeouts = [int(t) for t in re.findall(r"proxy_read_timeout (\d+)s;", conf)]
    assert min(read_timeouts) > defaults().wait_max_s  # above the long-poll cap
    events = conf.split("location ~ ^/v1/runs/[^/]+/events$")[1].split("}")[0]
    chat = conf.split("location = /v1/chat/completions")[1].split("}")[0]
    for block in (events, chat):
        assert "proxy_buffering off;" in block
    assert "proxy_set_header X-Request-ID $flowfleet_request_id;" in conf
    assert "escape=json" in conf
    assert "limit_req zone=flowfleet_per_ip" in conf
    assert "location = /metrics {\n            deny all;" in conf
    assert "proxy_next_upstream error timeout http_502" in conf


def test_nginx_accepts_both_rendered_configurations(tmp_path: Path) -> None:
    binary = nginx_binary()
    assert binary, "nginx is not installed (make test installs it when run as root)"
    local = tmp_path / "local"
    (local / "nginx.conf").parent.mkdir()
    (local / "nginx.conf").write_text(
        render_local(defaults(), listen_port=18080, api_ports=[18001, 18002], runtime=local)
    )
    # Debian's nginx predates `resolve` on upstream servers: check the rest of the Docker file.
    docker = tmp_path / "docker"
    docker.mkdir()
    text = render_compose(defaults()).replace(f"api:{COMPOSE_API_PORT} resolve", "127.0.0.1:1")
    (docker / "nginx.conf").write_text(text.replace("/tmp", str(docker)))
    for prefix in (local, docker):
        check = subprocess.run(
            [binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr


# --- Kubernetes -----------------------------------------------------------------------------


def test_every_manifest_passes_the_kubernetes_schemas() -> None:
    checked = 0
    for _name, doc in k8s_documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked field by field below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 12


def test_keda_scales_workers_on_the_celery_queue_list() -> None:
    scaled = k8s_kind("ScaledObject")
    config = k8s_kind("ConfigMap")["data"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert (
        scaled["spec"]["scaleTargetRef"]["name"]
        == k8s_kind("Deployment", "flowfleet-worker")["metadata"]["name"]
    )
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis"
    # Kombu's Redis transport: priority 0 messages live in the list named after the queue.
    assert trigger["metadata"]["listName"] == config["FLOWFLEET_QUEUE_NAME"]
    assert trigger["metadata"]["listName"] == defaults().queue_name
    redis_url = config["FLOWFLEET_REDIS_URL"]
    host_port, db = redis_url.removeprefix("redis://").split("/")
    assert trigger["metadata"]["address"] == host_port
    assert trigger["metadata"]["databaseIndex"] == db
    assert int(trigger["metadata"]["listLength"]) > 0
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]


def test_kubernetes_values_agree_with_the_settings() -> None:
    config = k8s_kind("ConfigMap")["data"]
    secret = k8s_kind("Secret")["stringData"]
    known = {f"FLOWFLEET_{name.upper()}" for name in Settings.model_fields}
    assert set(config) | set(secret) <= known
    values = {k.removeprefix("FLOWFLEET_").lower(): v for k, v in config.items()}
    # The Secret's webhook secret is a placeholder production refuses (the operator sets one).
    settings = Settings(_env_file=None, webhook_secret="set-by-the-operator", **values)  # type: ignore[call-arg]
    api = k8s_kind("Deployment", "flowfleet-api")["spec"]["template"]
    worker = k8s_kind("Deployment", "flowfleet-worker")["spec"]["template"]
    api_container = api["spec"]["containers"][0]
    assert api_container["ports"][0]["containerPort"] == settings.api_port
    assert api_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["metadata"]["annotations"]["prometheus.io/port"] == str(settings.api_port)
    worker_container = worker["spec"]["containers"][0]
    assert worker_container["ports"][0]["containerPort"] == settings.worker_metrics_port
    assert worker["metadata"]["annotations"]["prometheus.io/port"] == str(
        settings.worker_metrics_port
    )
    assert worker["spec"]["terminationGracePeriodSeconds"] > settings.run_timeout_s
    for container in (api_container, worker_container):
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    ingress = k8s_kind("Ingress", "flowfleet")["metadata"]["annotations"]
    assert ingress["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(ingress["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > settings.wait_max_s
    assert ingress["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    assert settings.max_body_bytes == 1024 * 1024
    paths = [
        p["path"] for p in k8s_kind("Ingress", "flowfleet")["spec"]["rules"][0]["http"]["paths"]
    ]
    uploads = k8s_kind("Ingress", "flowfleet-files")
    size = uploads["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(size.rstrip("m")) * 1024 * 1024 >= settings.max_file_body_bytes
    assert [p["path"] for p in uploads["spec"]["rules"][0]["http"]["paths"]] == ["/v1/files"]
    assert "/metrics" not in paths
    assert "/" not in paths
    assert k8s_kind("HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert len([d for _, d in k8s_documents() if d["kind"] == "PodDisruptionBudget"]) == 2
    assert k8s_kind("Job")["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


# --- Prometheus and Grafana ------------------------------------------------------------------

DEFINED = {
    value._name if hasattr(value, "_name") else value  # noqa: SLF001
    for name, value in vars(metrics).items()
    if name.isupper() and name != "SECONDS"
}


def referenced_metrics(text: str) -> set[str]:
    names = set(re.findall(r"\b(flowfleet_[a-z_]+)", text))
    # Histogram and counter series carry suffixes the definitions do not.
    return {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in names}


def test_prometheus_config_and_alert_rules_parse_and_use_defined_metrics() -> None:
    prom = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert jobs["flowfleet-api"]["dns_sd_configs"][0]["names"] == ["api"]
    assert jobs["flowfleet-worker"]["dns_sd_configs"][0]["port"] == 9100
    rules_text = (REPO_ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    rules = yaml.safe_load(rules_text)["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "FlowfleetQueueGrowing",
        "FlowfleetRunErrorRate",
        "FlowfleetNoWorkerConsuming",
    }
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"]
    defined = {re.sub(r"_total$", "", n) for n in DEFINED}
    assert referenced_metrics(rules_text) <= defined


def test_grafana_dashboard_is_provisioned_and_plots_defined_metrics() -> None:
    grafana = REPO_ROOT / "deploy" / "grafana"
    source = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((grafana / "provisioning/dashboards/flowfleet.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((grafana / "dashboards/flowfleet.json").read_text())
    exprs = "\n".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    defined = {re.sub(r"_total$", "", n) for n in DEFINED}
    assert referenced_metrics(exprs) <= defined
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for needed in ("runs", "p50 / p99", "queue depth", "in flight", "error rate", "tokens / s"):
        assert needed in titles, needed
