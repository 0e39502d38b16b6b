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
from agent_harness import SYNTH, AgentProcess, StartAgent, start_agent_fixture  # noqa: F401
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = REPO / "deploy" / "kubernetes"
TARGETS = ["base", "overlays/staging", "overlays/production"]
# oldest and newest Kubernetes minor the manifests must be valid for
KUBERNETES_VERSIONS = ["1.27", "1.37"]
CRD_MODELS = {"ServiceMonitor": ServiceMonitor, "PrometheusRule": PrometheusRule}
STATE_DIR = "/var/lib/synth"


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


def secret_values(docs: tuple[dict[str, Any], ...], name: str) -> dict[str, str]:
    secret = named(docs, "Secret", name)
    values = dict(secret.get("stringData", {}))
    values |= {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return values


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
            "Secret",
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
        assert deployment["spec"]["replicas"] == 1  # one pod per location
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
        for e in c["env"]:
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                secret = secrets[ref["name"]]
                assert ref["key"] in {**secret.get("stringData", {}), **secret.get("data", {})}


def test_example_secret_holds_placeholders_only() -> None:
    values = secret_values(render("base"), "synth-secrets")
    assert values
    assert all(v.startswith("CHANGE-ME") for v in values.values()), values


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
    monitor = named(docs, "ServiceMonitor", "synth")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    policy = named(docs, "NetworkPolicy", "synth")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8484]
    egress_ports = sorted(p["port"] for rule in policy["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 443]
    pdb = named(docs, "PodDisruptionBudget", "synth")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert len(selected({"spec": {"selector": pdb["selector"]["matchLabels"]}})) == len(deployments)


def test_locations_are_distinct() -> None:
    production = of_kind(render("overlays/production"), "Deployment")
    staging = of_kind(render("overlays/staging"), "Deployment")
    locations = [env_of(d)["SYNTH_LOCATION"]["value"] for d in production + staging]
    assert len(production) == 2
    assert len(set(locations)) == len(locations), locations
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in production]
    assert len(set(selectors)) == 2  # the two Deployments never adopt each other's pods


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
    assert data == shipped


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
    secrets = secret_values(docs, "synth-secrets")
    env = {}
    for name, entry in env_of(deployment).items():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        env[name] = secrets[ref["key"]] if ref else entry["value"]
    # the config reads its checks from where the Deployment mounts them
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    assert yaml.safe_load(config)["checks"] == [mounts["checks"]]
    return config_path, checks_dir, env


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


def test_production_config_boots_a_real_agent(
    tmp_path: Path, start_agent: StartAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, checks, env = extract_config("overlays/production", tmp_path)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    # loopback, a temp store, no scheduled runs (the example targets are not reachable)
    data["checks"] = [str(checks)]
    data["server"] |= {"host": "127.0.0.1", "port": 0}
    data["store"]["url"] = f"sqlite+aiosqlite:///{tmp_path}/synth.db"
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
