"""The apply step: one batch of validated messages stored in one transaction.

In order, each a function of its own:

1. sort the batch against itself and against the keys already stored (dedup.py):
   status and seq-less info are plain updates; a data message is new, a duplicate, or
   under a key another message holds (``seq_reused``);
2. claim the keys of the new non-frame messages and insert the new frame batches (a
   key another collector claimed meanwhile makes the message a duplicate);
3. quarantine the reused keys (quarantine.py);
4. count per session and run what arrived (counters.Tally), touch the devices heard from
   and open the runs first seen;
5. write each message's own rows (rows.py), then the frame, replay, duplicate and session
   counters, and the stored frames into each run's latency histogram.

The counts returned: stored, duplicates, retained_again (a retained message delivered again
on resubscribe), seq_reused.
"""

from __future__ import annotations

import time

from edgebench.collector.ingest.validate import Message
from edgebench.collector.store import counters, dedup, quarantine, rows


def apply_batch(store, cur, messages: list[Message]) -> dict[str, int]:
    """Store ``messages`` through the open cursor ``cur`` (the caller commits)."""
    now = time.time()
    batch = dedup.sort_batch(messages)
    fresh, content_dups = _store_new(store, cur, batch, now)
    counts = {"stored": 0, "duplicates": 0, "retained_again": 0, "seq_reused": 0}
    counts["seq_reused"] = quarantine.keep_reused(store, cur, batch.reused)
    tally = _tally(batch.duplicates, content_dups, fresh, counts)
    counters.touch_devices(store, cur, batch.plain + fresh)
    counters.open_runs(store, cur, fresh)
    _write_rows(store, cur, batch.plain, fresh, now)
    counts["stored"] = len(batch.plain) + len(fresh)
    counters.count_frames(store, cur, fresh)
    counters.count_latency(store, cur, fresh)
    tally.write(store, cur, now)
    return counts


def _store_new(store, cur, batch: dedup.Sorted, now: float) -> tuple[list[Message], list[Message]]:
    """Claim the keys of the new data messages and insert the new frame batches. Returns
    (what this transaction stored, frame batches whose frames were already stored)."""
    new_frames, new_other = dedup.against_stored(store, cur, batch)
    fresh = dedup.claim_keys(store, cur, new_other, now, batch)
    if not new_frames:
        return fresh, []
    f = dedup.store_frames(store, cur, new_frames, now)
    batch.duplicates += f.raced
    return fresh + f.stored, f.content_duplicates


def _tally(
    dups: list[Message], content_dups: list[Message], fresh: list[Message], counts: dict[str, int]
) -> counters.Tally:
    """Count the duplicates (a retained message again is not one) and what was stored."""
    tally = counters.Tally()
    for m in dups:
        if m.retained:
            counts["retained_again"] += 1
            continue
        counts["duplicates"] += 1
        tally.duplicate(m)
    for m in content_dups:
        counts["duplicates"] += 1
        tally.content_duplicate(m)
    for m in fresh:
        tally.stored(m)
    return tally


def _write_rows(store, cur, plain: list[Message], fresh: list[Message], now: float) -> None:
    """Each message's own rows; frame batches are already in."""
    for m in plain:
        rows.write(store, cur, m, now)
    for m in fresh:
        if m.kind != "frames":
            rows.write(store, cur, m, now)
