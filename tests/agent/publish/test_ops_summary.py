"""A summary carries the op table within the payload limit (issue 13)."""

import json

from tests.support.paths import ROOT, run_cli

MOBILENET_INT8 = ROOT / "models" / "mobilenet_v2_0.35_96_int8_untrained.tflite"


def test_a_summary_carries_at_most_the_slowest_operators_within_the_payload_limit(tmp_path):
    """A graph of thousands of operators: the published summary keeps the slowest MAX_PUBLISHED_OPS
    and says so; the result file keeps them all; the summary stays under the payload limit."""
    from edgebench.agent.publish.publisher import MAX_PUBLISHED_OPS, summary_result
    from edgebench.agent.wire.protocol import MAX_PAYLOAD_BYTES

    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--frames", "3", "--threads", "1", "--ops", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    rows = res["ops"]["ops"]
    big = [{**rows[i % len(rows)], "index": i, "ms": float(i % 97)} for i in range(6000)]
    res["ops"] = {**res["ops"], "ops": big, "total": len(big)}
    published = summary_result(res)
    kept = published["ops"]["ops"]
    assert len(kept) == published["ops"]["ops_published"] == MAX_PUBLISHED_OPS and published["ops"]["total"] == 6000
    assert min(o["ms"] for o in kept) >= max(o["ms"] for o in big if o not in kept)
    assert len(json.dumps(published)) < MAX_PAYLOAD_BYTES < len(json.dumps(res))
    assert len(res["ops"]["ops"]) == 6000 and "predictions" not in published
