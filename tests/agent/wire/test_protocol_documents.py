"""Sweeps and scenarios on the wire: a summary's ``result`` may be an edgebench.sweep/1 or
edgebench.scenario/1 document. What the agent makes passes the collector's validator;
malformed documents are rejected with a reason naming the field; older messages stay valid."""

from __future__ import annotations

import copy
import json

import pytest

from edgebench.agent.errors import PublishError
from edgebench.agent.publish.documents import fit_document, summary_bytes
from edgebench.agent.wire import protocol
from edgebench.collector.ingest.validate import Rejected, Validator
from tests.support.documents import meta_of, scenario_doc, summary_of, sweep_doc
from tests.support.fleet import result_doc, summary
from tests.support.paths import SHAPES_MODEL

V = Validator()


def check(body: dict) -> object:
    kind = {protocol.SUMMARY_SCHEMA: "summary", protocol.RUN_META_SCHEMA: "meta"}[body["schema"]]
    return V(protocol.run_topic(body["device_id"], body["run_id"], kind), json.dumps(body).encode())


def test_the_agents_own_documents_pass():
    """A real sweep and a real scenario of the bundled model, as the agent builds them."""
    from edgebench.agent.measure.run import RunOptions
    from edgebench.agent.measure.scenario_run import run_scenario_opts
    from edgebench.agent.measure.sweep import SweepOptions, sweep

    sw = sweep(SweepOptions(model=str(SHAPES_MODEL), batch=[1, 2], instances=[1, 2], frames=5, device_id="doc-dev"))
    assert check(summary_of(sw)).kind == "summary"
    for scen, extra in (
        ("single-stream", {}),
        ("multi-stream", {}),
        ("offline", {}),
        ("server", {"target_qps": 200.0, "latency_bound_ms": 100.0}),
    ):
        doc = run_scenario_opts(
            RunOptions(model=str(SHAPES_MODEL), scenario=scen, frames=20, min_queries=1, device_id="doc-dev", **extra)
        )
        assert check(summary_of(doc)).body["result"]["scenario"] == scen
        assert check(meta_of(doc)).kind == "meta"
    search = run_scenario_opts(
        RunOptions(
            model=str(SHAPES_MODEL),
            find_max_qps=True,
            latency_bound_ms=50.0,
            frames=20,
            min_queries=1,
            max_qps_steps=2,
            device_id="doc-dev",
        )
    )
    assert check(summary_of(search)).body["result"]["scenario"] == "find-max-qps"


def test_per_frame_summaries_of_older_agents_stay_valid():
    res = result_doc("old-dev", "r1")
    assert check(summary("old-dev", 1, 3, res)).body["result"]["schema"] == protocol.RESULT_SCHEMA
    bad = dict(res)
    del bad["latency_ms"]
    with pytest.raises(Rejected, match="latency_ms"):
        check(summary("old-dev", 1, 3, bad))


def _bad_sweep(edit) -> dict:
    doc = copy.deepcopy(sweep_doc("q-dev", "bad-sweep"))
    edit(doc)
    return {**summary_of(doc), "device_id": "q-dev", "run_id": "bad-sweep"}


def _set(path, value):
    def edit(doc):
        obj = doc
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, code, words",
    [
        (lambda d: d["points"].pop(3), "inconsistent", "every point must be reported"),
        (_set(["points", 0, "latency_ms", "p99"], -1.0), "invalid", "less than the minimum of 0"),
        (lambda d: d["points"][6].pop("reason"), "invalid", "reason"),
        (_set(["points", 0, "status"], "maybe"), "invalid", "maybe"),
        (_set(["points", 1, "batch"], 16), "inconsistent", "batch 16 is not in the grid"),
        (_set(["counts", "ok"], 5), "inconsistent", "counts.ok is 5 but 6 point(s)"),
        (_set(["points", 0, "verdict"], "INVALID"), "inconsistent", "verdict INVALID with 0 reason(s)"),
        (_set(["points", 0, "latency_histogram_ms", "counts"], [1, 2]), "inconsistent", "4 edges for 2 counts"),
        (_set(["schema"], "edgebench.sweep/2"), "invalid", "edgebench.sweep/2"),
        (_set(["run_id"], "another-run"), "inconsistent", "disagree with the envelope"),
    ],
)
def test_malformed_sweeps_are_rejected_with_a_reason(edit, code, words):
    with pytest.raises(Rejected) as e:
        check(_bad_sweep(edit))
    assert e.value.code == code and words in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "edit, words",
    [
        (_set(["verdict"], "VALID"), "verdict VALID with 1 reason(s)"),
        (_set(["headline", "value"], 3.5), "true or false"),
        (_set(["scenario"], "burst"), "burst"),
        (lambda d: d.pop("headline"), "headline"),
    ],
)
def test_malformed_scenarios_are_rejected_with_a_reason(edit, words):
    doc = copy.deepcopy(scenario_doc("q-dev", "bad-scen", "server", valid=False))
    edit(doc)
    with pytest.raises(Rejected) as e:
        check(summary_of(doc))
    assert words in str(e.value), str(e.value)


def test_a_sweep_too_large_for_one_message_is_published_without_its_histograms():
    """512 points (the largest grid) with long per-point texts: the published document drops
    the per-point histograms (and says so) to fit the 512 KiB limit; nothing else is cut."""
    doc = sweep_doc("big-dev", "big")
    proto = next(p for p in doc["points"] if p["status"] == "ok")
    proto = {
        **proto,
        "latency_histogram_ms": {"edges_ms": [0.1 * (1.1**i) for i in range(41)], "counts": [7] * 40},
        "cpu_scope": "x" * 300,
    }
    batches, threads, instances = list(range(1, 33)), list(range(1, 5)), list(range(1, 5))
    doc["points"] = [
        {**proto, "batch": b, "threads": t, "instances": i, "items": proto["batches"] * b}
        for b in batches
        for t in threads
        for i in instances
    ]
    doc["grid"] = {"batch": batches, "threads": threads, "instances": instances, "instance_mode": "threads"}
    doc["counts"] = {"ok": 512, "unsupported": 0, "failed": 0}
    assert summary_bytes("big-dev", doc) > protocol.MAX_PAYLOAD_BYTES
    pub = fit_document("big-dev", doc)
    assert pub["published_without"] == ["points[].latency_histogram_ms"]
    assert "published without the per-point latency histograms" in pub["notes"][-1]
    assert len(pub["points"]) == 512 and all("latency_histogram_ms" not in p for p in pub["points"])
    assert all(p["cpu_scope"] == "x" * 300 for p in pub["points"])
    assert "latency_histogram_ms" in doc["points"][0]  # the local document keeps them
    assert summary_bytes("big-dev", pub) <= protocol.MAX_PAYLOAD_BYTES
    assert check(summary_of(pub)).kind == "summary"
    small = sweep_doc("big-dev", "small")
    assert fit_document("big-dev", small) is small
    for p in doc["points"]:  # even without histograms, too large: one clear error, not a cut document
        p["cpu_scope"] = "y" * 2000
    with pytest.raises(PublishError, match="more than one message may carry"):
        fit_document("big-dev", doc)
