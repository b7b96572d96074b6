"""The deploy files' checkers, fetched once into the cache: kustomize built from the Go module proxy, the Compose
Specification's JSON schema from the compose-go module (the schema Docker Compose itself validates against)."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.1"  # the newest that builds with the Go of Debian's machines here (1.26)
COMPOSE_GO = "github.com/compose-spec/compose-go/v2"
COMPOSE_GO_VERSION = "v2.16.2"


def cache() -> Path:
    return Path(os.environ.get("ZIXLY_CACHE_DIR", ROOT / ".zixly" / "cache"))


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("Go is needed to build kustomize once: deploy/bootstrap.sh installs it")
    return go


def kustomize() -> Path:
    binary = cache() / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"GOBIN": str(binary.parent), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        subprocess.run([_go(), "install", f"{KUSTOMIZE}@{KUSTOMIZE_VERSION}"], check=True, env=env, timeout=900)
    return binary


def render(overlay: str) -> list[dict[str, Any]]:
    built = subprocess.run(
        [str(kustomize()), "build", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return [document for document in yaml.safe_load_all(built.stdout) if document]


def compose_schema() -> dict[str, Any]:
    downloaded = subprocess.run(
        [_go(), "mod", "download", "-json", f"{COMPOSE_GO}@{COMPOSE_GO_VERSION}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cache(),
    )
    folder = Path(json.loads(downloaded.stdout)["Dir"])
    schema: dict[str, Any] = json.loads((folder / "schema" / "compose-spec.json").read_text())
    return schema
