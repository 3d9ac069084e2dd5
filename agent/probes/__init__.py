"""Board probes: inventory, power, thermal/throttling and system readings.

One module per hardware facet (after jetson-stats), each reading through a
``SysFS`` root (``/`` on a board, a fake tree in tests or with
``$EDGEBENCH_SYSFS_ROOT``) and an injectable command runner:

* ``inventory``: which board this is (``board_inventory()``);
* ``power``: INA3221 (Jetson), Pi 5 PMIC, RAPL, hwmon; ``tegrastats``; ``meters``
  (a user command, a USB serial meter); ``discover_power()``;
* ``thermal``: zones, hwmon, cpufreq, Pi ``get_throttled``, Jetson OC counters, Edge TPU;
* ``system``: CPU %, memory, load (psutil);
* ``sampler``: the background sampler and the energy integrals;
* ``session``: ``ProbeSession`` around a run, ``telemetry_snapshot()`` between runs;
* ``info``: what ``edgebench info`` prints.

Importing this package imports nothing heavy; psutil and numpy come with
``session``/``sampler``.
"""

from edgebench.agent.probes._fs import ROOT_ENV, ProbeError, SysFS, as_fs

__all__ = ["ROOT_ENV", "ProbeError", "SysFS", "as_fs"]
