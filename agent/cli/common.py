"""What ``edgebench run`` and ``edgebench sweep`` share on the command line: reading the
config file and the flags into the config's shape (agent/options), and the publishing
settings a command hands down (agent/publish/documents.py ``PublishSettings``). The
argparse Namespace stops here."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from edgebench.agent.cli.flags import given
from edgebench.agent.options.table import section_values

if TYPE_CHECKING:
    from edgebench.agent.publish.documents import PublishSettings


def read_settings(args: argparse.Namespace, command: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the --config file, checked; the flags given, checked), both in the config's shape."""
    from edgebench.agent.options import config as cfgmod

    cfg = cfgmod.load(args.config) if args.config else {}
    return cfg, given(args, command)


def publish_settings(merged: dict[str, Any], args: argparse.Namespace, command: str) -> PublishSettings | None:
    """PublishSettings when there is a broker (``--mqtt`` or ``mqtt.url``), else None.
    A bad broker URL is a user error now, before, not after, the run."""
    mqtt = merged.get("mqtt") or {}
    if not mqtt.get("url"):
        return None
    from edgebench.agent.publish.documents import PublishSettings
    from edgebench.agent.wire.transport import parse_url

    parse_url(mqtt["url"])
    return PublishSettings(
        mqtt=mqtt,
        wait_s=section_values(merged, "outbox", command)["drain_wait_s"],
        outbox=merged.get("outbox") or {},
        keep=args.json,
        quiet=args.quiet,
        verbose=args.verbose,
    )
