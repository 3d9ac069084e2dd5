"""How many threads an interpreter runs with: the default, decided once, here.

Every runtime adapter (the Interpreter in ``interpreter``, and any other runtime API
added beside it) asks :func:`resolve` for the thread count it hands the runtime, and
records the number it got, so a result always says how many threads ran
(``runtime.num_threads``) and where the number came from (``runtime.num_threads_from``).

The default is **every core this process may run on** (``os.sched_getaffinity``: a
container's or a ``taskset``'s limit counts, not just the machine's cores). Why:

* TFLite ``benchmark_model``'s ``--num_threads -1`` leaves the count to the runtime; the
  Python Interpreter then runs its CPU kernels (XNNPACK included) on ONE thread, so a
  4-core Raspberry Pi is measured on one core while the result cannot say how many
  threads ran. A benchmark must know the number it records, so edgebench never passes
  "let the runtime decide".
* One thread (LiteRT's Python tool's default) is reproducible but is not how a board
  runs a model it is deployed with; it is one flag away (``--threads 1``) for those
  who compare single-core speed.
* All cores is what a deployment that wants the lowest latency uses, and what most
  users expect a benchmark to measure. The count is shown in the summary's first
  line, stored by the collector and shown wherever boards are compared.
"""

from __future__ import annotations

import os

#: ``runtime.num_threads_from`` values
GIVEN = "given"
DEFAULT = "default"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """The thread count used when none is given: every core this process may use."""
    return available_cores()


def resolve(requested: int | None) -> tuple[int, str]:
    """(the thread count to hand the runtime, GIVEN or DEFAULT)."""
    if requested is not None:
        return int(requested), GIVEN
    return default_threads(), DEFAULT


def describe(n: int | None, source: str | None = GIVEN) -> str:
    """``1 thread``, ``2 threads``, or ``2 threads (all cores, the default)`` for a person;
    a document from before the count was recorded says ``threads not recorded``."""
    if n is None:
        return "threads not recorded"
    text = f"{n} thread{'' if n == 1 else 's'}"
    return f"{text} (all cores, the default)" if source == DEFAULT else text


#: how the options' help and the docs name the default
DEFAULT_HELP = "every core this process may use (os.sched_getaffinity)"
