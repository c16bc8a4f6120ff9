"""deploy/k8s and deploy/compose.yaml: schema-valid, wired to names that exist, and running
the commands and settings the code actually has.

Kubernetes manifests are validated offline against the OpenAPI schemas that the
``kubernetes-validate`` package bundles (strict: unknown fields are errors). Docker Compose
cannot run on the build machine, so compose.yaml is checked structurally.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from services.cli import build_app
from services.common.policy import load_policy
from services.common.settings import CommonSettings
from services.incidents.api.settings import ApiSettings
from services.incidents.settings import IncidentsSettings
from services.ingest.settings import IngestSettings
from services.notify.service_settings import NotifyServiceSettings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.33.0"
SERVICES = ("ingest", "incidents", "notify")
# The design aim: each service process stays under 1.5 GB RSS.
MEMORY_AIM_BYTES = 1.5 * 1024**3
SETTINGS_CLASSES = (
    CommonSettings,
    IngestSettings,
    IncidentsSettings,
    ApiSettings,
    NotifyServiceSettings,
)
SETTING_NAMES = {
    f"OUTAGEDESK_{field.upper()}" for cls in SETTINGS_CLASSES for field in cls.model_fields
}
ENV_NAME = re.compile(r"\bOUTAGEDESK_[A-Z0-9_]+")


@cache
def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


@cache
def resources() -> list[dict[str, Any]]:
    """Every object ``kubectl apply -k`` creates, generated ConfigMaps included (cached:
    callers only read)."""
    objects: list[dict[str, Any]] = []
    for name in kustomization()["resources"]:
        objects += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    for generator in kustomization().get("configMapGenerator", []):
        data = {Path(f).name: (K8S / f).read_text() for f in generator["files"]}
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return objects


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in resources() if o["kind"] == kind}


def pod_specs() -> dict[str, dict[str, Any]]:
    workloads = {**of_kind("Deployment"), **of_kind("Job")}
    return {name: w["spec"]["template"]["spec"] for name, w in workloads.items()}


def memory_bytes(quantity: str) -> float:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", quantity)
    assert match, quantity
    return float(match[1]) * units.get(match[2] or "", 1)


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def command_exists(argv: list[str]) -> bool:
    """Whether ``outagedesk <argv...>`` names a command of the real CLI (options ignored).

    Walks the command tree by its ``commands`` mappings: typer may bring its own click."""
    command: object = typer.main.get_command(build_app())
    for word in argv:
        if word.startswith("-"):
            break
        subcommands = getattr(command, "commands", None)
        if not isinstance(subcommands, dict) or word not in subcommands:
            return False
        command = subcommands[word]
    return getattr(command, "commands", None) is None


class TestCommandExists:
    def test_known_and_unknown_commands(self) -> None:
        assert command_exists(["serve", "notify"])
        assert command_exists(["topics", "create", "--partitions", "6"])
        assert not command_exists(["serve", "notifier"])
        assert not command_exists(["serve"])  # a group, not a command
        assert not command_exists(["migrate", "extra"])


class TestKubernetesManifests:
    @pytest.mark.parametrize(
        "obj", resources(), ids=[f"{o['kind']}/{o['metadata']['name']}" for o in resources()]
    )
    def test_object_validates_against_the_kubernetes_schema(self, obj: dict[str, Any]) -> None:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)

    def test_kustomization_lists_every_manifest(self) -> None:
        listed = set(kustomization()["resources"])
        generated = {f for g in kustomization()["configMapGenerator"] for f in g["files"]}
        on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        assert on_disk == listed | generated

    def test_one_deployment_per_service_running_its_serve_command(self) -> None:
        deployments = of_kind("Deployment")
        assert set(deployments) == {f"outagedesk-{s}" for s in SERVICES}
        for service in SERVICES:
            spec = pod_specs()[f"outagedesk-{service}"]
            (container,) = spec["containers"]
            assert container["args"][:2] == ["serve", service]
            assert command_exists(container["args"])

    @pytest.mark.parametrize("service", SERVICES)
    def test_probes_hit_readyz_and_healthz_on_a_declared_port(self, service: str) -> None:
        (container,) = pod_specs()[f"outagedesk-{service}"]["containers"]
        ports = {p["name"] for p in container["ports"]} | {
            p["containerPort"] for p in container["ports"]
        }
        ready, alive = container["readinessProbe"], container["livenessProbe"]
        assert ready["httpGet"]["path"] == "/readyz"
        assert alive["httpGet"]["path"] == "/healthz"
        assert ready["httpGet"]["port"] in ports
        assert alive["httpGet"]["port"] in ports

    @pytest.mark.parametrize(
        ("service", "setting"),
        [
            ("ingest", "OUTAGEDESK_INGEST_METRICS_PORT"),
            ("incidents", "OUTAGEDESK_API_PORT"),
            ("notify", "OUTAGEDESK_NOTIFY_PORT"),
        ],
    )
    def test_container_port_is_the_port_the_service_listens_on(
        self, service: str, setting: str
    ) -> None:
        config = of_kind("ConfigMap")["outagedesk-config"]["data"]
        (container,) = pod_specs()[f"outagedesk-{service}"]["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [int(config[setting])]
        host_setting = setting.replace("_PORT", "_HOST")
        assert config[host_setting] == "0.0.0.0"  # noqa: S104 - a pod must listen beyond lo

    def test_every_container_has_requests_and_limits_within_the_memory_aim(self) -> None:
        for name, spec in pod_specs().items():
            for container in spec.get("initContainers", []) + spec["containers"]:
                res = container["resources"]
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(res[part]), (name, container["name"])
                limit = memory_bytes(res["limits"]["memory"])
                assert memory_bytes(res["requests"]["memory"]) <= limit
                assert limit <= MEMORY_AIM_BYTES, (name, container["name"])

    def test_config_and_secret_references_exist(self) -> None:
        config_maps, secrets = of_kind("ConfigMap"), of_kind("Secret")
        for name, spec in pod_specs().items():
            for container in spec.get("initContainers", []) + spec["containers"]:
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        assert source["configMapRef"]["name"] in config_maps, name
                    else:
                        assert source["secretRef"]["name"] in secrets, name
                for var in container.get("env", []):
                    ref = var["valueFrom"]["configMapKeyRef"]
                    assert ref["key"] in config_maps[ref["name"]]["data"], name
                # $(VAR) in args is only expanded for variables the container has
                names = {v["name"] for v in container.get("env", [])}
                for arg in container["args"]:
                    assert set(re.findall(r"\$\((\w+)\)", arg)) <= names, name
            for volume in spec.get("volumes", []):
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps, name

    def test_services_use_env_from_both_config_and_secret(self) -> None:
        for service in SERVICES:
            (container,) = pod_specs()[f"outagedesk-{service}"]["containers"]
            kinds = {next(iter(source)) for source in container["envFrom"]}
            assert kinds == {"configMapRef", "secretRef"}

    def test_every_outagedesk_variable_is_a_setting(self) -> None:
        names = set(of_kind("ConfigMap")["outagedesk-config"]["data"])
        names |= set(of_kind("Secret")["outagedesk-secrets"]["stringData"])
        for commented_too in ("configmap.yaml", "secret.yaml"):
            names |= set(ENV_NAME.findall((K8S / commented_too).read_text()))
        unknown = {n for n in names if n.startswith("OUTAGEDESK_")} - SETTING_NAMES
        assert unknown == set()

    def test_policy_file_is_mounted_where_the_setting_points_and_is_valid(
        self, tmp_path: Path
    ) -> None:
        config = of_kind("ConfigMap")["outagedesk-config"]["data"]
        policy_path = Path(config["OUTAGEDESK_POLICY_FILE"])
        (container,) = pod_specs()["outagedesk-incidents"]["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[str(policy_path.parent)] == "policy"
        copy = tmp_path / policy_path.name
        copy.write_text(of_kind("ConfigMap")["outagedesk-policy"]["data"][policy_path.name])
        load_policy(copy)

    def test_consumer_replicas_do_not_exceed_partitions(self) -> None:
        partitions = int(of_kind("ConfigMap")["outagedesk-config"]["data"]["TOPIC_PARTITIONS"])
        for service in SERVICES:
            assert of_kind("Deployment")[f"outagedesk-{service}"]["spec"]["replicas"] <= partitions

    def test_services_and_pdb_select_existing_pods_and_ports(self) -> None:
        deployments = of_kind("Deployment")

        def pods_matching(selector: dict[str, str]) -> list[dict[str, Any]]:
            return [
                d["spec"]["template"]
                for d in deployments.values()
                if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            ]

        for service in of_kind("Service").values():
            (pod,) = pods_matching(service["spec"]["selector"])
            port_names = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
        (pdb,) = of_kind("PodDisruptionBudget").values()
        (pod,) = pods_matching(pdb["spec"]["selector"]["matchLabels"])
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "incidents"

    def test_jobs_run_migrate_and_topics_create(self) -> None:
        jobs = {n: s["containers"][0]["args"] for n, s in pod_specs().items() if "serve" not in
                s["containers"][0]["args"]}  # fmt: skip
        assert jobs["outagedesk-migrate"] == ["migrate"]
        assert jobs["outagedesk-topics"][:2] == ["topics", "create"]
        assert all(command_exists(args) for args in jobs.values())


class TestCompose:
    def test_depends_on_targets_exist_with_a_satisfiable_condition(self) -> None:
        services = compose()["services"]
        for name, service in services.items():
            for target, spec in service.get("depends_on", {}).items():
                assert target in services, (name, target)
                if spec["condition"] == "service_healthy":
                    assert "healthcheck" in services[target], (name, target)
                else:
                    assert spec["condition"] == "service_completed_successfully"
                    assert services[target]["restart"] == "no", (name, target)

    def test_kafka_runs_kraft_single_node_with_replication_factor_one(self) -> None:
        env = compose()["services"]["kafka"]["environment"]
        assert compose()["services"]["kafka"]["image"].startswith("apache/kafka:")
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
        for key in (
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
        ):
            assert env[key] == 1, key

    @pytest.mark.parametrize("name", ["postgres", "kafka", *SERVICES])
    def test_long_running_containers_have_healthchecks(self, name: str) -> None:
        assert compose()["services"][name]["healthcheck"]["test"]

    @pytest.mark.parametrize(
        ("service", "port_setting"),
        [
            ("ingest", "OUTAGEDESK_INGEST_METRICS_PORT"),
            ("incidents", "OUTAGEDESK_API_PORT"),
            ("notify", "OUTAGEDESK_NOTIFY_PORT"),
        ],
    )
    def test_services_run_serve_and_check_readyz_on_their_port(
        self, service: str, port_setting: str
    ) -> None:
        spec = compose()["services"][service]
        assert spec["command"] == ["serve", service]
        assert command_exists(spec["command"])
        port = spec["environment"][port_setting]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])
        for setup in ("migrate", "topics"):
            assert spec["depends_on"][setup]["condition"] == "service_completed_successfully"
        for backing in ("postgres", "kafka"):
            assert spec["depends_on"][backing]["condition"] == "service_healthy"

    def test_one_shot_jobs_run_migrate_and_topics_create(self) -> None:
        services = compose()["services"]
        assert services["migrate"]["command"] == ["migrate"]
        assert services["topics"]["command"][:2] == ["topics", "create"]
        assert command_exists(services["migrate"]["command"])
        assert command_exists(services["topics"]["command"])

    def test_every_outagedesk_variable_is_a_setting(self) -> None:
        used = set(ENV_NAME.findall((DEPLOY / "compose.yaml").read_text()))
        used |= set(ENV_NAME.findall((DEPLOY / ".env.example").read_text()))
        assert "OUTAGEDESK_DATABASE_URL" in used
        assert used - SETTING_NAMES == set()
