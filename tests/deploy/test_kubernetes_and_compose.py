"""The rendered Kubernetes overlays and the compose file are valid against their schemas, complete, and use the
native stack's settings and nothing else."""

from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices

from kernel.settings import Settings
from tests.deploy.tools import ROOT, compose_schema, render

KUBERNETES_VERSION = "1.33.0"  # the oldest minor still supported upstream at the time of writing
OVERLAYS = ("dev", "prod")
SERVICES = {"zixly-receiver", "zixly-worker", "zixly-projector", "zixly-notifier", "zixly-dashboard"}
SECRET_WORDS = ("SECRET", "PASSWORD", "KEYS", "DATABASE_URL", "TOKEN")


@cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    return render(overlay)


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in rendered(overlay) if doc["kind"] == kind}


def setting_names() -> set[str]:
    """Every environment variable the settings read: ZIXLY_<FIELD>, and the aliases some fields also take."""
    names = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"ZIXLY_{field_name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names |= {choice for choice in field.validation_alias.choices if isinstance(choice, str)}
        elif isinstance(field.validation_alias, str):
            names.add(field.validation_alias)
    return names


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_is_valid_against_the_kubernetes_schemas(overlay: str) -> None:
    documents = rendered(overlay)

    assert documents
    for document in documents:
        # strict: a field the API does not know (a typo in a probe, say) is an error, not silently dropped.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_and_the_migrations_job_are_deployed_with_probes_resources_and_no_root(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    jobs = of_kind(overlay, "Job")

    assert set(deployments) == SERVICES
    assert set(jobs) == {"zixly-setup"}
    for name, workload in (deployments | jobs).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            if workload["kind"] == "Deployment":
                assert "readinessProbe" in container, name
                assert "livenessProbe" in container, name


def test_production_has_a_disruption_budget_for_every_service_and_a_worker_autoscaler_on_lag() -> None:
    deployments = of_kind("prod", "Deployment")
    budgets = of_kind("prod", "PodDisruptionBudget")
    (autoscaler,) = of_kind("prod", "HorizontalPodAutoscaler").values()

    labels = {name: deployment["spec"]["template"]["metadata"]["labels"] for name, deployment in deployments.items()}
    covered = {
        name
        for name, pod_labels in labels.items()
        for budget in budgets.values()
        if budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    }
    assert covered == SERVICES
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "zixly-worker"
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "zixly_consumer_group_lag"
    assert autoscaler["spec"]["maxReplicas"] <= int(
        of_kind("prod", "ConfigMap")["zixly-config"]["data"]["ZIXLY_TOPIC_PARTITIONS"]
    )


def test_production_pulls_the_image_by_digest_and_development_runs_one_of_each_without_budgets() -> None:
    images = {
        c["image"] for d in of_kind("prod", "Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]
    }
    dev = of_kind("dev", "Deployment")

    assert all("@sha256:" in image for image in images)
    assert {d["spec"]["replicas"] for d in dev.values()} == {1}
    assert of_kind("dev", "PodDisruptionBudget") == {}
    assert of_kind("dev", "HorizontalPodAutoscaler") == {}
    assert {doc["metadata"].get("namespace") for doc in rendered("dev") if doc["kind"] != "Namespace"} == {"zixly-dev"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_and_secrets_are_apart(overlay: str) -> None:
    config = of_kind(overlay, "ConfigMap")["zixly-config"]["data"]
    secrets = {key for secret in of_kind(overlay, "Secret").values() for key in secret["stringData"]}

    assert not [key for key in config if any(word in key for word in SECRET_WORDS)]
    assert {"ZIXLY_MASTER_KEYS", "ZIXLY_SESSION_KEYS", "ZIXLY_CALLBACK_SECRET", "DATABASE_URL"} <= secrets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_sets_only_settings_that_the_native_stack_reads(overlay: str) -> None:
    names = set(of_kind(overlay, "ConfigMap")["zixly-config"]["data"])
    names |= {key for secret in of_kind(overlay, "Secret").values() for key in secret["stringData"]}

    assert names - setting_names() == set()


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())

    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose())
    ]

    assert errors == []


def test_compose_sets_only_settings_that_the_native_stack_reads() -> None:
    ours = {"setup", "receiver", "worker", "projector", "notifier", "dashboard"}
    names = {name for service, spec in compose()["services"].items() if service in ours for name in spec["environment"]}

    assert names - setting_names() == set()


def test_every_compose_service_has_a_health_check() -> None:
    services = compose()["services"]

    missing = [name for name, spec in services.items() if name != "setup" and "healthcheck" not in spec]

    assert missing == []
