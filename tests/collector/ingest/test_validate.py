"""Malformed messages are rejected with a reason and never reach the results."""

import json

import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.ingest.validate import Rejected, Validator

V = Validator()
DEV = "val-dev"
RUN = "20260101T000000Z-abcdef"


def frames_payload(**over):
    cols = {s: [1.0, 2.0] for s in protocol.STAGES}
    msg = protocol.frames_message(DEV, 1, 5, RUN, 0, cols, 1.0)
    msg.update(over)
    return msg


def topic(kind="frames", dev=DEV):
    return protocol.run_topic(dev, RUN, kind)


def test_a_good_batch_passes():
    m = V(topic(), json.dumps(frames_payload()).encode())
    assert m.kind == "frames" and m.device_id == DEV and m.run_id == RUN


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x00\xffgarbage", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (json.dumps(frames_payload(schema="edgebench.frames/9")).encode(), "schema"),
        (json.dumps(frames_payload(seq="7")).encode(), "seq"),
        (json.dumps(frames_payload(device_id="other-dev")).encode(), "does not match topic device"),
        (json.dumps(frames_payload(n=3)).encode(), "has 2 values, n is 3"),
        (json.dumps(frames_payload()).replace("2.0", "-2.0").encode(), "less than the minimum of 0"),
        (json.dumps(frames_payload()).replace("2.0", "NaN").encode(), "NaN is not valid JSON"),
        (b"{" + b" " * (protocol.MAX_PAYLOAD_BYTES + 1) + b"}", "exceeds"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(payload, reason):
    with pytest.raises(Rejected) as e:
        V(topic(), payload)
    assert reason in str(e.value)


def test_topic_outside_the_tree():
    with pytest.raises(Rejected, match="not in the"):
        V("edgebench/v2/x/status", b"{}")
