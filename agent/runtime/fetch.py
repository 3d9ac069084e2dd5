"""Models by registry name: where a name's file is, fetching it when it is not here yet.

Every command that takes a model (``run``, its scenarios, ``sweep``, the agent's configured
and remote jobs) passes what it was given through :func:`resolve_model`: a path that
exists is used as it is; a registry name (``shapes-int8``,
``coral-mobilenet-v2-1.0-224-quant``) becomes its bundled file, or its cached download,
fetched first (and its labels entry with it) when it is not on this machine yet;
anything else is a one-line ModelError that says which registry names exist.
:func:`fetch` downloads an entry into the cache, checking its sha256 as it comes
(``edgebench models fetch`` is the same function).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Callable

from edgebench.agent.errors import ModelError, UserError

log = logging.getLogger("edgebench.fetch")


def _models():
    from edgebench import models  # the registry package ships with edgebench

    return models


def _sha256(path: Path) -> str:
    return _models().file_sha256(path)


class FetchError(UserError):
    """A public model could not be downloaded, or what came is not what the registry says."""

    exit_code = 7


def fetch(e: dict[str, Any], *, timeout: float = 30.0, force: bool = False, out: Callable[[str], None] = print) -> Path:
    """Download a registry entry with a url into the cache, checking its sha256 as it comes."""
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    from edgebench.agent import __version__

    m = _models()
    name = e["name"]
    dest = m.local_path(e)
    if "file" in e:
        if not dest.is_file() or _sha256(dest) != e["sha256"]:
            raise ModelError(f"{name} is bundled but {dest} is missing or damaged; reinstall edgebench")
        out(f"{name} is bundled with edgebench: {dest}")
        return dest
    if dest.is_file() and not force:
        if _sha256(dest) == e["sha256"]:
            out(f"{name} is already cached (sha256 ok): {dest}")
            return dest
        out(f"{name}: the cached copy does not match its sha256; downloading it again")
    url = e["url"]
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.part-{os.getpid()}")
        f = open(tmp, "wb")
    except OSError as err:
        raise FetchError(
            f"cannot write to the model cache {dest.parent}: {err.strerror or err}; set EDGEBENCH_CACHE_DIR"
        ) from None
    h = hashlib.sha256()
    size = 0
    ok = False
    try:
        with f:
            req = urllib.request.Request(url, headers={"User-Agent": f"edgebench/{__version__}"})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                while True:
                    chunk = r.read(1 << 16)
                    if not chunk:
                        break
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
        ok = True
    except urllib.error.HTTPError as err:
        raise FetchError(f"cannot fetch {name}: {url} answered HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise FetchError(
            f"cannot fetch {name}: {host} cannot be reached ({reason}); this machine is offline or cannot "
            f"reach that host: fetch on a connected machine and copy the file to {dest}"
        ) from None
    finally:
        if not ok:
            tmp.unlink(missing_ok=True)
    digest = h.hexdigest()
    if digest != e["sha256"]:
        tmp.unlink(missing_ok=True)
        raise FetchError(
            f"{name}: the download from {url} ({size} bytes) has sha256 {digest}, not the registry's "
            f"{e['sha256']}; it was not kept"
        )
    os.replace(tmp, dest)
    out(f"fetched {name}: {size} bytes, sha256 ok, to {dest}")
    return dest


def resolve_model(
    spec: str, *, fetch_missing: bool = True, out: Callable[[str], None] | None = None, timeout: float = 30.0
) -> str:
    """The model file for ``spec``: a path that exists, else a registry name's file (fetched
    into the cache first when ``fetch_missing`` and it is not here); ModelError otherwise."""
    if os.path.exists(spec):
        return spec
    from edgebench.agent.runtime.registry import load

    entries = {e["name"]: e for e in load() if e.get("task") != "labels"}
    e = entries.get(spec)
    if e is None:
        close = difflib.get_close_matches(spec, list(entries), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; `edgebench models list` shows them"
        raise ModelError(f"model file not found: {spec} (nor is it a model's name in the registry{hint})")
    path = _models().local_path(e)
    if path.is_file():
        return str(path)
    if "url" not in e or not fetch_missing:
        raise ModelError(f"{spec} is not on this machine: edgebench models fetch {spec}")
    say = out or log.warning
    say(f"edgebench: {spec} is not on this machine yet: fetching it")
    got = fetch(e, timeout=timeout, out=say)
    labels = e.get("labels")
    everything = {x["name"]: x for x in load()}
    if labels in everything and labels != spec:
        fetch(everything[labels], timeout=timeout, out=say)
    return str(got)


def is_model_name(spec: str) -> bool:
    """Whether ``spec`` names a model in the registry (fetched or not)."""
    from edgebench.agent.runtime.registry import load

    return any(e["name"] == spec and e.get("task") != "labels" for e in load())
