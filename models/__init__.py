"""Models bundled with edgebench (built by models/build.py) and their registry.

``registry.yaml`` beside this file holds a list ``models:``. An entry with ``file``
is a bundled model (path relative to this folder); an entry with ``url`` is a
public model that ``edgebench models fetch NAME`` downloads into the cache
(``$EDGEBENCH_CACHE_DIR``, else ``~/.cache/edgebench/models``) and checks
against its ``sha256``.

``$EDGEBENCH_REGISTRY`` names more registry files (separated by ``os.pathsep``)
whose entries are added, or replace bundled ones of the same name; their
``file`` paths are relative to their own folder. Tests use it to point a
``url`` at a local server.

Light on purpose: PyYAML only, imported when a registry is read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent
REGISTRY = MODELS_DIR / "registry.yaml"

#: the key each loaded entry carries: the folder its relative `file` is under
_DIR = "_dir"


class RegistryError(Exception):
    """A registry file is missing, unreadable or malformed."""


def _read(path: Path) -> list[dict[str, Any]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RegistryError(f"cannot read model registry {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise RegistryError(f"model registry {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    entries = (data or {}).get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise RegistryError(f"model registry {path} has no list `models:`")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise RegistryError(f"model registry {path}: entry {i} has no name")
        if not (("file" in e) ^ ("url" in e)):
            raise RegistryError(f"model registry {path}: {e['name']} needs exactly one of file or url")
        sha = e.get("sha256")
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise RegistryError(f"model registry {path}: {e['name']} has no valid sha256 (64 hex digits)")
        out.append({**e, _DIR: str(path.resolve().parent)})
    return out


def registry_files() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("EDGEBENCH_REGISTRY", "").split(os.pathsep) if p]
    return [REGISTRY, *extra]


def load_registry() -> list[dict[str, Any]]:
    """Every entry: the bundled registry, then $EDGEBENCH_REGISTRY files (same name replaces)."""
    by_name: dict[str, dict[str, Any]] = {}
    for path in registry_files():
        for e in _read(path):
            by_name[e["name"]] = e
    return list(by_name.values())


def entry(name: str) -> dict[str, Any]:
    for e in load_registry():
        if e["name"] == name:
            return e
    raise KeyError(name)


def cache_dir() -> Path:
    """Where fetched models live: $EDGEBENCH_CACHE_DIR, else ~/.cache/edgebench/models."""
    env = os.environ.get("EDGEBENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "edgebench" / "models"


def local_path(e: dict[str, Any]) -> Path:
    """Where an entry's file is: beside its registry (bundled) or in the cache (fetched)."""
    if "file" in e:
        return Path(e.get(_DIR, MODELS_DIR)) / e["file"]
    return cache_dir() / cached_name(e)


def cached_name(e: dict[str, Any]) -> str:
    """File name in the cache: the entry's `filename`, else the last part of its URL."""
    if e.get("filename"):
        return str(e["filename"])
    tail = e["url"].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or e["name"]


def path_of(name: str) -> Path:
    """Absolute path of a model by registry name (bundled, or where fetch puts it)."""
    return local_path(entry(name))


def labels_path(e: dict[str, Any]) -> Path | None:
    """The entry's labels file: a file beside the registry, or another (fetched) entry by name."""
    labels = e.get("labels")
    if not labels:
        return None
    for other in load_registry():
        if other["name"] == labels:
            return local_path(other)
    return Path(e.get(_DIR, MODELS_DIR)) / labels


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def by_sha256(sha256: str) -> dict[str, Any] | None:
    """The registry entry whose sha256 is this one (a model is known by its bytes, not its name)."""
    for e in load_registry():
        if e["sha256"] == sha256:
            return e
    return None


def public(e: dict[str, Any]) -> dict[str, Any]:
    """The entry without loader bookkeeping."""
    return {k: v for k, v in e.items() if k != _DIR}
