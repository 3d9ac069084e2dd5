"""Models bundled with edgebench (built by models/build.py) and their registry."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
REGISTRY = MODELS_DIR / "registry.yaml"


def load_registry() -> list[dict]:
    import yaml

    return yaml.safe_load(REGISTRY.read_text())["models"]


def entry(name: str) -> dict:
    for e in load_registry():
        if e["name"] == name:
            return e
    raise KeyError(name)


def path_of(name: str) -> Path:
    """Absolute path of a bundled model file by registry name."""
    return MODELS_DIR / entry(name)["file"]
