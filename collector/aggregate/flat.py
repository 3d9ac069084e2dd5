"""Flat rows for CSV and Parquet: nested figures (latency per stage, energy, a headline)
become one column each."""

from __future__ import annotations

import json
from typing import Any


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """``latency_ms`` -> ``<stage>_<stat>_ms``; energy -> ``energy_per_inference_{gross,net}_mj``;
    another flat dict -> ``<key>_<field>``; any other nested value as JSON."""
    out = {}
    for k, v in row.items():
        if k == "latency_ms" and isinstance(v, dict) and all(isinstance(st, dict) for st in v.values()):
            for stage, st in v.items():
                for s, x in st.items():
                    out[f"{stage}_{s}_ms"] = x
        elif k == "energy_per_inference_mj":
            out["energy_per_inference_gross_mj"] = (v or {}).get("gross")
            out["energy_per_inference_net_mj"] = (v or {}).get("net")
        elif isinstance(v, dict) and all(not isinstance(x, (dict, list)) for x in v.values()):
            for s, x in v.items():  # e.g. headline -> headline_metric, headline_value, headline_unit
                out[f"{k}_{s}"] = x
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = v
    return out
