"""Resident memory at the moments TFLite's ``benchmark_model --report_peak_memory_footprint``
reports: after the model loads, after ``allocate_tensors`` (or the CompiledModel's
compilation), after the first inference, and the peak over the run.

Resident set size of this process, from ``/proc/self/statm`` (Linux; one small read, never
inside a timed stage), else ``resource.getrusage`` (the peak only). The figures are the
whole agent process: the model's share is the difference from ``before_load_mb``. The
interpreter's tensor arena is not readable from TFLite's Python API, so it is not given.
"""

from __future__ import annotations

import os
import resource
import sys

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

SCOPE = (
    "resident memory of the whole agent process (MB); the model's share is the difference from before_load_mb; "
    "peak_mb is the process's peak so far (getrusage ru_maxrss)"
)


def rss_mb() -> float | None:
    """The process's resident memory now, in MB (None where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return round(int(f.read().split()[1]) * _PAGE / 1e6, 2)
    except (OSError, ValueError, IndexError):
        return None


def peak_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(ru * 1024 / 1e6 if sys.platform != "darwin" else ru / 1e6, 2)
