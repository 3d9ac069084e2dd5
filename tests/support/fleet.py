"""Shared pieces of the collector tests: a throwaway PostgreSQL database per test session,
a store fixture parametrized over SQLite and PostgreSQL, and protocol-valid messages."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.agent.wire.stats import summarize_ms

PG_ADMIN_URL = os.environ.get("EDGEBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SHA = "ab" * 32


@pytest.fixture(scope="session")
def pg_url():
    """A throwaway database on the local PostgreSQL, dropped at the end of the session."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[collector]')")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as e:
        pytest.skip(
            f"no PostgreSQL reachable at {PG_ADMIN_URL} ({str(e).strip().splitlines()[0]}); "
            "set EDGEBENCH_TEST_PG to another server"
        )
    name = f"edgebench_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def fresh_pg_store(pg_url):
    from edgebench.collector.store import PostgresStore

    st = PostgresStore(pg_url)
    st.execute("TRUNCATE " + ", ".join(st.tables))
    return st


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from edgebench.collector.store import SQLiteStore

    if request.param == "sqlite":
        st = SQLiteStore(str(tmp_path / "fleet.db"))
    else:
        st = fresh_pg_store(request.getfixturevalue("pg_url"))
    yield st
    st.close()


# --------------------------------------------------------------------------- messages
def columns(n: int, rng: np.random.Generator, scale: float = 1.0) -> dict[str, list[float]]:
    cols = {s: np.round(rng.gamma(4.0, 0.5 * scale, n), 4) for s in protocol.STAGES if s != "e2e"}
    cols["e2e"] = np.round(sum(cols.values()) + 0.01, 4)
    return {s: v.tolist() for s, v in cols.items()}


def frames(
    dev: str,
    session: int,
    seq: int,
    run: str,
    first: int,
    cols: dict[str, list[float]],
    replayed: bool = False,
    ts: float | None = None,
) -> dict[str, Any]:
    return protocol.frames_message(dev, session, seq, run, first, cols, time.time() if ts is None else ts, replayed)


def result_doc(
    dev: str,
    run: str,
    samples: dict[str, list[float]] | None = None,
    *,
    model: str = "m.tflite",
    runtime: str = "ai-edge-litert",
    delegate: str | None = None,
    duration_s: float = 1.0,
    **extra,
) -> dict[str, Any]:
    samples = samples or {s: [1.0] for s in protocol.STAGES}
    n = len(samples["e2e"])
    doc = {
        "schema": protocol.RESULT_SCHEMA,
        "device_id": dev,
        "run_id": run,
        "model": {"path": f"/models/{model}", "name": model, "sha256": SHA, "inputs": []},
        "runtime": {"name": runtime, "version": "2.3.0", "delegate": delegate, "num_threads": 2},
        "source": {"kind": "synthetic"},
        "frames": n,
        "warmup_frames": 5,
        "duration_s": duration_s,
        "fps": n / duration_s,
        "init_ms": 3.0,
        "first_inference_ms": 1.0,
        "latency_ms": {s: summarize_ms(samples[s]) for s in protocol.STAGES},
    }
    doc.update(extra)
    return doc


def summary(dev: str, session: int, seq: int, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": protocol.SUMMARY_SCHEMA,
        "device_id": dev,
        "session": session,
        "seq": seq,
        "ts": time.time(),
        "run_id": result["run_id"],
        "result": result,
    }


def meta(dev: str, session: int, seq: int, run: str, model: str = "m.tflite", **extra) -> dict[str, Any]:
    return {
        "schema": protocol.RUN_META_SCHEMA,
        "device_id": dev,
        "session": session,
        "seq": seq,
        "ts": time.time(),
        "run_id": run,
        "model": {"name": model, "sha256": SHA, "path": f"/models/{model}"},
        "runtime": {"name": "ai-edge-litert", "version": "2.3.0", "delegate": None, "num_threads": 2},
        "source": {"kind": "synthetic"},
        **extra,
    }


def status(dev: str, session: int, state: str) -> dict[str, Any]:
    return {"schema": protocol.STATUS_SCHEMA, "device_id": dev, "session": session, "state": state, "ts": time.time()}


def info(dev: str, session: int, seq: int, version: str = "0.1.0") -> dict[str, Any]:
    return {
        "schema": protocol.INFO_SCHEMA,
        "device_id": dev,
        "session": session,
        "seq": seq,
        "ts": time.time(),
        "agent_version": version,
        "inventory": {"machine": "aarch64"},
        "capabilities": ["run"],
    }


def topic_for(body: dict[str, Any]) -> str:
    kind = {v: k for k, v in protocol.KIND_SCHEMA.items()}[body["schema"]]
    if kind in ("meta", "frames", "summary"):
        return protocol.run_topic(body["device_id"], body["run_id"], kind)
    return f"{protocol.device_prefix(body['device_id'])}/{kind}"


_VALIDATOR = None


def as_message(body: dict[str, Any], retained: bool = False):
    """Validate as the collector would, giving a store-ready Message."""
    import json

    global _VALIDATOR
    if _VALIDATOR is None:
        from edgebench.collector.ingest.validate import Validator

        _VALIDATOR = Validator()
    m = _VALIDATOR(topic_for(body), json.dumps(body).encode(), retained)
    assert m is not None
    return m
