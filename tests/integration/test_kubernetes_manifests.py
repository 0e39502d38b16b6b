"""deploy/kubernetes rendered by real kustomize (`kubectl kustomize`) and checked as a
cluster would: every object against the Kubernetes OpenAPI schemas bundled by
kubernetes-validate (strict: unknown fields fail), the Prometheus Operator objects against
models generated from their CRDs, the hardening the Deployment promises, and the shipped
config and checks through `synth validate` and a real `synth agent`."""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from agent_harness import SYNTH, AgentProcess, StartAgent
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = REPO / "deploy" / "kubernetes"
TARGETS = ["base", "overlays/staging", "overlays/production"]
# oldest and newest Kubernetes minor the manifests must be valid for
KUBERNETES_VERSIONS = ["1.27", "1.37"]
CRD_MODELS = {"ServiceMonitor": ServiceMonitor, "PrometheusRule": PrometheusRule}
STATE_DIR = "/var/lib/synth"
SECRETS_DIR = "/var/run/secrets/synth"
EXAMPLE_SECRET = REPO / "deploy" / "examples" / "kubernetes" / "secret.example.yaml"
# Agents per location: one on SQLite (base, staging), a cluster of 3 on PostgreSQL
# (production; its synth.yaml says cluster.expected_members: 3).
REPLICAS = {"base": 1, "overlays/staging": 1, "overlays/production": 3}
# The one environment variable taken from the Secret (store.url takes no file: reference)
STORE_URL_FROM_SECRET = {"secretKeyRef": {"name": "synth-secrets", "key": "store-url"}}
# What the agent's stop takes beyond scheduler.shutdown_grace: up to 5 s each for alerts,
# traces and the HTTP server, and store writes (leave the cluster, hand deploys over, flush).
STOP_BEYOND_GRACE_S = 15 + 10


@functools.cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize deploy/kubernetes/<target>`, parsed."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to render the manifests"
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE_ROOT / target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    """The object `name`, or the generated one `name-<hash>`."""
    pattern = re.compile(re.escape(name) + r"(-[a-z0-9]{10})?")
    found = [d for d in of_kind(docs, kind) if pattern.fullmatch(d["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container(deployment)["env"]}


def config_of(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The rendered synth.yaml (the synth-config ConfigMap), parsed."""
    text = named(docs, "ConfigMap", "synth-config")["data"]["synth.yaml"]
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def pods_of(deployments: list[dict[str, Any]], selector: dict[str, str]) -> list[str]:
    """The Deployments whose pods `selector` (matchLabels) selects."""
    return [
        d["metadata"]["name"]
        for d in deployments
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]


def example_secret() -> dict[str, str]:
    """The keys and placeholder values of the example Secret (applied by no kustomization)."""
    secret = yaml.safe_load(EXAMPLE_SECRET.read_text(encoding="utf-8"))
    kubernetes_validate.validate(secret, KUBERNETES_VERSIONS[-1], strict=True)
    assert secret["metadata"]["name"] == "synth-secrets"
    values = dict(secret.get("stringData", {}))
    values |= {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return values


def stand_in(placeholder: str) -> str:
    """A value the agent accepts in place of an example placeholder (`CHANGE-ME-x`, or a
    URL with one as its password)."""
    return placeholder.replace("CHANGE-ME-", "test-stand-in-", 1)


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_is_valid(target: str) -> None:
    docs = render(target)
    assert docs
    for doc in docs:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        model = CRD_MODELS.get(doc["kind"])
        if model is not None:
            parsed = model.model_validate(doc)
            # the models ignore unknown fields: a round trip that loses one means a typo
            dumped = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
            assert dumped == doc, f"{what}: fields the CRD does not know"
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{what} invalid for Kubernetes {version}: {exc.message}")


def test_a_typo_fails_validation() -> None:
    # the validation above really rejects bad objects
    deployment = yaml.safe_load(yaml.safe_dump(named(render("base"), "Deployment", "synth")))
    container(deployment)["livenessProbe"]["httpGett"] = {"path": "/healthz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    monitor = yaml.safe_load(yaml.safe_dump(named(render("base"), "ServiceMonitor", "synth")))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    dumped = ServiceMonitor.model_validate(monitor).model_dump(
        by_alias=True, exclude_unset=True, mode="json"
    )
    assert dumped != monitor


def test_base_has_every_part() -> None:
    kinds = sorted(d["kind"] for d in render("base"))
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "ConfigMap",
            "Service",
            "Service",
            "Deployment",
            "ServiceMonitor",
            "PrometheusRule",
            "PodDisruptionBudget",
            "NetworkPolicy",
        ]
    )
    assert {d["metadata"].get("namespace") for d in render("base") if d["kind"] != "Namespace"} == {
        "synth"
    }


@pytest.mark.parametrize("target", TARGETS)
def test_deployments_are_hardened(target: str) -> None:
    docs = render(target)
    config_maps = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    accounts = {d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")}
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] == REPLICAS[target]
        assert pod["serviceAccountName"] in accounts
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        c = container(deployment)
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["ports"] == [{"name": "http", "containerPort": 8484, "protocol": "TCP"}]
        for kind in ("requests", "limits"):
            assert set(c["resources"][kind]) == {"cpu", "memory"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
        # the only writable places: state and temp, on volumes
        assert "emptyDir" in mounts[STATE_DIR] or "persistentVolumeClaim" in mounts[STATE_DIR]
        assert "emptyDir" in mounts["/tmp"]
        for m in c["volumeMounts"]:
            if m["mountPath"] not in (STATE_DIR, "/tmp"):
                assert m["readOnly"] is True, m
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps  # hash-suffixed name resolved
        # Secrets are files from the Secret you create (env vars would not rotate), but
        # for the store URL (read once at start, no file: reference) of production.
        from_secret = {e["name"]: e["valueFrom"] for e in c["env"] if "valueFrom" in e}
        if target == "overlays/production":
            assert from_secret == {"SYNTH_STORE__URL": STORE_URL_FROM_SECRET}
        else:
            assert from_secret == {}
        assert mounts[SECRETS_DIR] == {
            "name": "secrets",
            "secret": {"secretName": "synth-secrets", "defaultMode": 0o440},
        }
        assert not secrets  # no Secret is applied: it would overwrite the real one


@pytest.mark.parametrize("target", TARGETS)
def test_no_target_applies_a_secret(target: str) -> None:
    # `kubectl apply -k` with a Secret in it overwrote the real synth-secrets with the
    # example's CHANGE-ME values.
    assert of_kind(render(target), "Secret") == []


def test_example_secret_holds_placeholders_only() -> None:
    values = example_secret()
    assert values
    # the store URL's placeholder is its password (the URL around it shows its shape)
    assert all("CHANGE-ME" in v for v in values.values()), values
    assert values["store-url"].startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("target", TARGETS)
def test_services_monitor_and_network_policy(target: str) -> None:
    docs = render(target)
    api = named(docs, "Service", "synth")
    metrics = named(docs, "Service", "synth-metrics")
    deployments = of_kind(docs, "Deployment")

    def selected(service: dict[str, Any]) -> list[str]:
        wanted = service["spec"]["selector"].items()
        return [
            d["metadata"]["name"]
            for d in deployments
            if wanted <= d["spec"]["template"]["metadata"]["labels"].items()
        ]

    assert len(selected(api)) == 1  # deploys are announced to and read from one agent
    assert len(selected(metrics)) == len(deployments)  # every location is scraped
    # a store outage makes the agent unready; Prometheus must still scrape it
    assert metrics["spec"]["publishNotReadyAddresses"] is True
    assert "publishNotReadyAddresses" not in api["spec"]  # deploys go to ready agents only
    monitor = named(docs, "ServiceMonitor", "synth")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    policy = named(docs, "NetworkPolicy", "synth")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8484]
    dns, out = policy["egress"]
    assert sorted(p["port"] for p in dns["ports"]) == [53, 53]
    assert [b["ipBlock"]["cidr"] for b in out["to"]] == ["0.0.0.0/0", "::/0"]  # IPv4 and IPv6
    # every target is HTTPS, and production's store PostgreSQL (generated)
    assert [p["port"] for p in out["ports"]] == [443, 5432]
    # One budget per location, over its pods only (a pod under two budgets cannot be
    # evicted): one of its agents down at a time.
    budgets = of_kind(docs, "PodDisruptionBudget")
    assert len(budgets) == len(deployments)
    for deployment in deployments:
        covering = [
            b for b in budgets if pods_of([deployment], b["spec"]["selector"]["matchLabels"])
        ]
        assert len(covering) == 1, deployment["metadata"]["name"]
        assert covering[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
        }


def test_locations_are_distinct() -> None:
    production = of_kind(render("overlays/production"), "Deployment")
    staging = of_kind(render("overlays/staging"), "Deployment")
    locations = [env_of(d)["SYNTH_LOCATION"]["value"] for d in production + staging]
    assert len(production) == 2
    assert len(set(locations)) == len(locations), locations
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in production]
    assert len(set(selectors)) == 2  # the two Deployments never adopt each other's pods


def test_production_agents_protect_reads() -> None:
    """Run details hold response excerpts: production turns `server.read_auth` on (the
    demo-like staging overlay leaves reads open)."""
    for deployment in of_kind(render("overlays/production"), "Deployment"):
        assert env_of(deployment)["SYNTH_SERVER__READ_AUTH"]["value"] == "true"
    for deployment in of_kind(render("overlays/staging"), "Deployment"):
        assert "SYNTH_SERVER__READ_AUTH" not in env_of(deployment)


def test_production_locations_are_clusters_of_three_on_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = render("overlays/production")
    config = config_of(docs)
    deployments = of_kind(docs, "Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["replicas"] == 3
        # one member at a time, never a 4th: 2 of 3 keep the checks and the deploy API
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
        }
        c = container(deployment)
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert env_of(deployment)["SYNTH_STORE__URL"]["valueFrom"] == STORE_URL_FROM_SECRET
    # the config expects as many members as each location has replicas
    assert config["cluster"]["expected_members"] == 3
    assert config["cluster"].get("enabled", True) is True
    assert "url" not in config.get("store", {})  # only the Secret's, no SQLite fallback
    # and the agent reads it so: PostgreSQL from the Secret, 3 members expected
    from synth.config import load_settings

    path = REPO / "deploy" / "kubernetes" / "overlays" / "production" / "synth.yaml"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == config
    for name in [n for n in os.environ if n.startswith("SYNTH_")]:
        monkeypatch.delenv(name)
    for name, entry in env_of(deployments[0]).items():
        monkeypatch.setenv(name, deployment_value(entry))
    settings = load_settings(path)
    assert settings.store.url.startswith("postgresql+asyncpg://")
    assert settings.cluster.enabled is True
    assert settings.cluster.expected_members == 3
    assert settings.cluster.member_id is None  # host name and port: the pod's name


def test_production_config_is_the_base_config_clustered() -> None:
    """overlays/production/synth.yaml replaces base/synth.yaml: the same but for the store
    (from the Secret) and the cluster section, so a change to the base reaches it."""
    base = config_of(render("base"))
    production = config_of(render("overlays/production"))
    assert base["store"]["url"].startswith("sqlite")
    assert "cluster" not in base
    assert {k: v for k, v in production.items() if k not in ("store", "cluster")} == {
        k: v for k, v in base.items() if k != "store"
    }


@pytest.mark.parametrize("target", ["base", "overlays/staging"])
def test_single_agent_targets_stay_one_pod_on_sqlite(target: str) -> None:
    # SQLite takes one agent (a second refuses to start): one pod, and a rollout that
    # stops the old pod before starting the new one.
    docs = render(target)
    assert config_of(docs)["store"]["url"].startswith("sqlite")
    for deployment in of_kind(docs, "Deployment"):
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
        assert "SYNTH_STORE__URL" not in env_of(deployment)


@pytest.mark.parametrize("target", TARGETS)
def test_termination_grace_covers_the_agents_stop(target: str) -> None:
    docs = render(target)
    grace = config_of(docs).get("scheduler", {}).get("shutdown_grace", 30)
    assert isinstance(grace, int | float), grace
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        pause = 0
        pre_stop = container(deployment).get("lifecycle", {}).get("preStop")
        if pre_stop is not None:
            command = pre_stop["exec"]["command"]
            assert command[:2] == ["python", "-c"]  # the image has no sleep binary
            match = re.fullmatch(r"import time; time\.sleep\((\d+)\)", command[2])
            assert match, command
            pause = int(match[1])
        assert pod["terminationGracePeriodSeconds"] >= pause + grace + STOP_BEYOND_GRACE_S


def test_zone_labelled_locations_keep_their_members_in_their_zone() -> None:
    """Each location's members all run in its own zone (required: a location spread over
    zones is several vantage points under one label, and one zone's outage would fail
    both locations), on different nodes where the zone allows (preferred)."""
    zones = []
    for deployment in of_kind(render("overlays/production"), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        location = env_of(deployment)["SYNTH_LOCATION"]["value"]
        required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert required["nodeSelectorTerms"] == [
            {
                "matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [location]}
                ]
            }
        ]
        zones.append(location)
        assert pod["topologySpreadConstraints"] == [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
            }
        ]
    assert len(zones) == 2
    assert len(set(zones)) == 2  # never two locations in one zone


def test_network_policy_egress_follows_the_configured_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync", REPO / "scripts" / "sync-kubernetes.py")
    assert spec is not None
    assert spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    config = tmp_path / "synth.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "environments": {
                    "a": {"services": {"web": {"base_url": "http://web.internal"}}},
                    "b": {"services": {"api": {"base_url": "https://api.internal:8443"}}},
                },
                "store": {"url": "postgresql+asyncpg://synth@db.internal/synth"},
            }
        ),
        encoding="utf-8",
    )
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(
        "env:\n  - {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: 'http://tempo:4318'}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sync, "CONFIGS", (config,))
    monkeypatch.setattr(sync, "MANIFESTS", (deployment,))
    # the shipped shop-port check probes the base URL's port; a YAML TCP step on 6379 too
    monkeypatch.setattr(
        sync,
        "source_checks",
        lambda: {"redis.yaml": b"name: r\nservice: web\nsteps: [{tcp: {host: r, port: 6379}}]\n"},
    )
    assert sync.egress_ports() == [80, 4318, 5432, 6379, 8443]
    policy = yaml.safe_load(sync.network_policy())
    kubernetes_validate.validate(policy, KUBERNETES_VERSIONS[-1], strict=True)
    assert [p["port"] for p in policy["spec"]["egress"][1]["ports"]] == [80, 4318, 5432, 6379, 8443]

    # A store URL set on a Deployment (also inside a kustomization's inline patch): its
    # port; taken from a Secret: PostgreSQL's default port; SQLite: none.
    config.write_text(
        yaml.safe_dump({"store": {"url": "sqlite+aiosqlite:///x.db"}}), encoding="utf-8"
    )
    monkeypatch.setattr(sync, "source_checks", dict)
    for store_env, ports in [
        ("{name: SYNTH_STORE__URL, value: 'postgresql+asyncpg://db:6432/synth'}", [6432]),
        ("{name: SYNTH_STORE__URL, valueFrom: {secretKeyRef: {name: s, key: k}}}", [5432]),
        ("{name: SYNTH_STORE__URL, value: 'sqlite+aiosqlite:///y.db'}", []),
    ]:
        deployment.write_text(f"env:\n  - {store_env}\n", encoding="utf-8")
        assert sync.egress_ports() == ports, store_env
    from_secret = "{name: SYNTH_STORE__URL, valueFrom: {secretKeyRef: {name: s, key: k}}}"
    patch = f"- op: add\n  path: /spec/template/spec/containers/0/env/-\n  value: {from_secret}\n"
    kustomization = tmp_path / "kustomization.yaml"
    kustomization.write_text(
        yaml.safe_dump({"patches": [{"target": {"kind": "Deployment"}, "patch": patch}]}),
        encoding="utf-8",
    )
    monkeypatch.setattr(sync, "MANIFESTS", (kustomization,))
    assert sync.egress_ports() == [5432]


def test_generated_files_are_in_sync() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sync-kubernetes.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_is_the_shipped_rules_file() -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "synth-rules.yaml").read_text())
    rendered = named(render("base"), "PrometheusRule", "synth")
    assert rendered["spec"]["groups"] == rules["groups"]
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert "SynthCheckFailingMultipleLocations" in alerts


def test_checks_config_map_is_the_checks_folder() -> None:
    data = named(render("base"), "ConfigMap", "synth-checks")["data"]
    shipped = {
        p.name: p.read_text(encoding="utf-8")
        for p in (REPO / "checks").iterdir()
        if p.suffix in (".py", ".yaml", ".yml")
    }
    # Browser checks need the browser image: the base (default image) leaves them out.
    browser = {"shop_ui_checkout.yaml"}
    assert browser <= set(shipped)
    assert data == {name: text for name, text in shipped.items() if name not in browser}


def extract_config(target: str, directory: Path) -> tuple[Path, Path, dict[str, str]]:
    """The target's synth.yaml and checks as files, and the environment the Deployment
    gives the agent (secrets resolved from the example Secret)."""
    docs = render(target)
    config = named(docs, "ConfigMap", "synth-config")["data"]["synth.yaml"]
    checks = named(docs, "ConfigMap", "synth-checks")["data"]
    config_path = directory / "synth.yaml"
    config_path.write_text(config, encoding="utf-8")
    checks_dir = directory / "checks"
    checks_dir.mkdir()
    for name, text in checks.items():
        (checks_dir / name).write_text(text, encoding="utf-8")
    deployment = named(docs, "Deployment", "synth")
    # The Secret's keys as files (stand-in values), where the config reads them.
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir()
    for key, placeholder in example_secret().items():
        (secrets_dir / key).write_text(stand_in(placeholder), encoding="utf-8")
    referenced = set(re.findall(rf"file:{re.escape(SECRETS_DIR)}/([\w.-]+)", config))
    assert referenced
    assert referenced <= set(example_secret()), referenced
    config_path.write_text(config.replace(SECRETS_DIR, str(secrets_dir)), encoding="utf-8")
    env = {name: deployment_value(entry) for name, entry in env_of(deployment).items()}
    # the config reads its checks from where the Deployment mounts them
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    assert yaml.safe_load(config)["checks"] == [mounts["checks"]]
    assert mounts["secrets"] == SECRETS_DIR
    return config_path, checks_dir, env


def deployment_value(entry: dict[str, Any]) -> str:
    """An environment variable of the Deployment: its value, or the example Secret's key
    it names (stand-in value)."""
    if "value" in entry:
        value: str = entry["value"]
        return value
    ref = entry["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "synth-secrets"
    return stand_in(example_secret()[ref["key"]])


def referenced_env(config_text: str) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.startswith("env:"):
            found.add(node[4:])

    walk(yaml.safe_load(config_text))
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_shipped_config_and_checks_pass_synth_validate(target: str, tmp_path: Path) -> None:
    config, checks, env = extract_config(target, tmp_path)
    wanted = referenced_env(config.read_text(encoding="utf-8"))
    assert wanted <= set(env), f"config needs {sorted(wanted - set(env))} the Deployment lacks"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNTH_")}
    result = subprocess.run(
        [SYNTH, "validate", "--config", str(config), str(checks)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean | env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 check(s) loaded" in result.stdout
    assert "0 problem(s)" in result.stdout


def test_the_example_secrets_placeholders_are_refused(tmp_path: Path) -> None:
    # Applied as shipped, the example Secret made the agent accept CHANGE-ME-agent-api-token.
    config, checks, env = extract_config("base", tmp_path)
    for key, placeholder in example_secret().items():
        (tmp_path / "secrets" / key).write_text(placeholder, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNTH_")}
    result = subprocess.run(
        [SYNTH, "validate", "--config", str(config), str(checks)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean | env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    refused = sorted(
        line.split(":")[1].strip()
        for line in result.stdout.splitlines()
        if "is a placeholder (CHANGE-ME" in line
    )
    assert refused == [
        "hooks.argocd.tokens[0]",
        "hooks.flagger.tokens[0]",
        "hooks.github.secret",
        "server.tokens[0]",
    ], result.stdout


def test_production_config_boots_a_real_agent(
    tmp_path: Path, start_agent: StartAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, checks, env = extract_config("overlays/production", tmp_path)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    # loopback, a temp store, no scheduled runs (the example targets are not reachable)
    data["checks"] = [str(checks)]
    data["server"] |= {"host": "127.0.0.1", "port": 0}
    data["store"] = {"url": f"sqlite+aiosqlite:///{tmp_path}/synth.db"}  # alone: no cluster
    data["scheduler"] = {"enabled": False}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    for name, value in env.items():
        if not name.startswith("SYNTH_"):
            monkeypatch.setenv(name, value)
    agent: AgentProcess = start_agent(config)
    assert agent.check_names() == {"browse", "checkout", "shop-port"}
    # every hook is configured; without credentials they answer 401 and run nothing
    for path in ("/v1/hooks/github", "/v1/hooks/argocd", "/v1/hooks/flagger"):
        response = agent.http.post(path, json={})
        assert response.status_code == 401, (path, response.text)
    assert agent.http.get("/v1/hooks/argo-rollouts").status_code == 401
    assert agent.runs() == []


def test_deployment_matches_the_image() -> None:
    from test_container_image import DOCKERFILE, final, only, parse

    _, instructions = parse(DOCKERFILE.read_text(encoding="utf-8"))
    runtime = final(instructions)
    cmd = json.loads(only(runtime, "CMD").args)
    config_file = Path(cmd[cmd.index("--config") + 1])
    uid = int(only(runtime, "USER").args.partition(":")[0])
    port = int(only(runtime, "EXPOSE").args)
    for target in TARGETS:
        for deployment in of_kind(render(target), "Deployment"):
            c = container(deployment)
            assert "command" not in c  # the image's ENTRYPOINT and CMD run as built
            assert "args" not in c
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            assert mounts["config"] == str(config_file.parent)
            assert mounts["state"] == json.loads(only(runtime, "VOLUME").args)[0]
            assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid
            assert c["ports"][0]["containerPort"] == port
