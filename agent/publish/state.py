"""The agent's small on-disk state: where it lives and the session counter."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edgebench.agent.errors import UserError


def state_dir() -> Path:
    """``$EDGEBENCH_STATE_DIR``, else ``$STATE_DIRECTORY`` (systemd), else XDG state home."""
    d = os.environ.get("EDGEBENCH_STATE_DIR") or os.environ.get("STATE_DIRECTORY")
    if not d:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        d = os.path.join(base, "edgebench")
    p = Path(d)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"cannot create the state folder {p}: {e.strerror or e}; set EDGEBENCH_STATE_DIR to a writable folder"
        ) from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into the state folder {p}; set EDGEBENCH_STATE_DIR to a writable folder")
    return p


def next_session(device_id: str) -> int:
    """Bump and return this device's session counter (persisted, survives reboots
    and clock resets, unlike a timestamp)."""
    path = state_dir() / f"session-{device_id}"
    try:
        current = int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        current = 0
    new = current + 1
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(str(new))
        os.replace(tmp, path)
    except OSError as e:  # a full disk must not stop the agent: the seq numbering keeps keys unique
        logging.getLogger("edgebench.state").warning(
            "cannot save the session counter in %s (%s): going on with session %d", path, e.strerror or e, new
        )
    return new
