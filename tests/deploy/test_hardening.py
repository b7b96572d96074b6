"""The deploy files run every service as production expects: non-root, read-only, least privilege, locked."""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
OUR_SERVICES = {"receiver", "worker", "projector", "notifier", "dashboard"}


def manifests() -> list[dict[str, Any]]:
    """The base every overlay builds on (test_kubernetes_and_compose checks what the overlays render)."""
    files = sorted((ROOT / "deploy/k8s/base").glob("*.yaml"))
    return [
        doc
        for path in files
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def pod_specs() -> dict[str, dict[str, Any]]:
    found = {}
    for document in manifests():
        if document["kind"] in {"Deployment", "Job"}:
            found[document["metadata"]["name"]] = document["spec"]["template"]["spec"]
    return found


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded["services"]


def test_kubernetes_deploys_every_service_and_the_set_up_job() -> None:
    assert set(pod_specs()) == {f"zixly-{name}" for name in OUR_SERVICES} | {"zixly-setup"}


@pytest.mark.parametrize("name", sorted(pod_specs()))
def test_every_kubernetes_container_is_non_root_read_only_and_without_capabilities(name: str) -> None:
    spec = pod_specs()[name]
    volumes = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        writable = {mount["mountPath"] for mount in container["volumeMounts"] if mount["name"] in volumes}
        assert writable == {"/tmp"}, "what the processes write goes to /tmp and nowhere else"


@pytest.mark.parametrize("name", ["zixly-receiver", "zixly-worker", "zixly-dashboard"])
def test_services_with_their_own_postgres_login_never_mount_the_owners(name: str) -> None:
    (container,) = pod_specs()[name]["containers"]
    assert {source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source} == {
        "zixly-secrets"
    }


@pytest.mark.parametrize("name", sorted(OUR_SERVICES | {"setup"}))
def test_every_compose_service_of_ours_is_non_root_read_only_and_without_capabilities(name: str) -> None:
    service = compose()[name]
    assert service["user"] == "10001"
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


@pytest.mark.parametrize("name", ["receiver", "worker", "dashboard"])
def test_compose_gives_the_owners_password_only_to_those_that_need_it(name: str) -> None:
    assert "DATABASE_URL" not in compose()[name]["environment"]


def test_every_image_is_pinned_by_digest() -> None:
    images = [service["image"] for service in compose().values() if "image" in service]
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    images += re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert images
    for image in images:
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{image} is a mutable tag"


def test_the_image_installs_only_hashed_locked_packages_and_runs_as_a_numeric_non_root_user() -> None:
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --no-deps" in dockerfile
    (user,) = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert user.isdigit()
    assert user != "0"


def test_the_image_copies_every_package_the_project_ships() -> None:
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = re.findall(r"^COPY\s+(\w+)\s+\./\1$", (ROOT / "deploy/Dockerfile").read_text(), flags=re.MULTILINE)
    assert sorted(copied) == sorted(pattern.rstrip("*") for pattern in shipped)


def locked(lock: str) -> dict[str, str]:
    """name -> version of every pin in a lock file; each pin must carry hashes.

    A universal lock may pin one package twice, under exclusive Python-version markers (bokeh 3.9 for 3.11, 3.10
    from 3.12): each line is checked, and the mapping keeps the last."""
    text = (ROOT / lock).read_text()
    lines = [line for line in text.splitlines() if re.match(r"[A-Za-z0-9]", line)]
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^ ;]+)(?: ;[^\\]*)? \\$", text, flags=re.MULTILINE)
    assert len(pins) == len(lines), "every requirement is an exact pin"
    assert len(re.findall(r"\\\n    --hash=sha256:[0-9a-f]{64}(?=[ \\\n])", text)) >= len(pins)
    return {canonicalize_name(name): version for name, version in pins}


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(name) for name in names]


@pytest.mark.parametrize(("lock", "extra"), [("requirements.lock", None), ("requirements-dev.lock", "dev")])
def test_the_locks_pin_every_declared_dependency_within_its_range(lock: str, extra: str | None) -> None:
    pins = locked(lock)
    wanted = declared() + (declared(extra) if extra else [])
    stale = [str(need) for need in wanted if pins.get(canonicalize_name(need.name)) not in need.specifier]
    assert not stale, f"run `make lock`: {lock} does not satisfy {stale}"


def test_the_runtime_lock_that_the_image_installs_holds_no_development_tool() -> None:
    tools = {"pytest", "mypy", "ruff", "pip-audit", "uv", "playwright", "schemathesis"}
    assert tools <= {canonicalize_name(need.name) for need in declared("dev")}
    assert not tools & set(locked("requirements.lock"))
