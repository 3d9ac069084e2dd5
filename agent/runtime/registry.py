"""The agent's view of the model registry (models/registry.yaml): a model is known by
its sha256, and a known model brings its normalization, its labels and whether its
weights are trained or only good for timing."""

from __future__ import annotations

import logging
from typing import Any

from edgebench.agent.errors import UserError

log = logging.getLogger("edgebench.registry")


def _models():
    from edgebench import models  # the registry package ships with edgebench

    return models


def load() -> list[dict[str, Any]]:
    m = _models()
    try:
        return m.load_registry()
    except m.RegistryError as e:
        raise UserError(str(e)) from None


def lookup(sha256: str) -> dict[str, Any] | None:
    """The entry for these bytes, or None. A broken registry never stops a benchmark."""
    m = _models()
    try:
        return m.by_sha256(sha256)
    except m.RegistryError as e:
        log.warning("model registry not used: %s", e)
        return None


def latency_only(e: dict[str, Any]) -> bool:
    return not e.get("trained", False)


def describe(e: dict[str, Any]) -> dict[str, Any]:
    """What a result records about a known model."""
    return {
        "name": e["name"],
        "task": e.get("task"),
        "trained": bool(e.get("trained", False)),
        "status": "latency only" if latency_only(e) else "trained",
        "license": e.get("license"),
        **({"accuracy_top1": e["accuracy_top1"]} if "accuracy_top1" in e else {}),
    }


def normalization(e: dict[str, Any]):
    """The entry's mean/std as a preprocess Normalization (source "registry"), or None."""
    norm = e.get("normalization")
    if not isinstance(norm, dict) or "mean" not in norm or "std" not in norm:
        return None
    from edgebench.agent.preprocess.image import Normalization

    def three(v) -> list[float]:
        vals = [float(x) for x in (v if isinstance(v, list) else [v])]
        return vals * 3 if len(vals) == 1 else vals

    return Normalization(three(norm["mean"]), three(norm["std"]), "registry")


def labels_file(e: dict[str, Any]) -> str | None:
    """The entry's labels file if it is on this machine (bundled, or fetched), else None."""
    p = _models().labels_path(e)
    if p is None:
        return None
    if not p.is_file():
        log.info("labels %s of %s are not on this machine (edgebench models fetch %s)", p, e["name"], e.get("labels"))
        return None
    return str(p)
