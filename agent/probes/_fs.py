"""Reading a (possibly fake) system tree and running board commands.

Every probe reads through a :class:`SysFS` rooted at ``/`` on a board, or at a
fake tree under a temporary folder in tests (``EDGEBENCH_SYSFS_ROOT`` for the
CLI). Board commands (``vcgencmd``, ``tegrastats``, ``nvpmodel``) go through an
injectable runner; with a fake root the default runner only finds commands
inside that root (``<root>/usr/bin`` ...), so a fake tree is a whole fake board
and never mixes with the real one.
"""

from __future__ import annotations

import glob as _glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, Sequence

ROOT_ENV = "EDGEBENCH_SYSFS_ROOT"


class ProbeError(Exception):
    """A reading that could not be taken; ``str()`` says why in one line."""


def natural_key(text: str) -> list:
    """Sort ``hwmon10`` after ``hwmon2``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def describe_oserror(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "missing"
    return e.strerror or type(e).__name__


class SysFS:
    """Files below ``root``; paths are given relative (``sys/class/hwmon``)."""

    def __init__(self, root: str | os.PathLike = "/"):
        self.root = os.path.abspath(os.fspath(root))
        self._paths: dict[str, str] = {}

    @property
    def is_real(self) -> bool:
        return self.root == "/"

    def path(self, rel: str) -> str:
        p = self._paths.get(rel)
        if p is None:
            if len(self._paths) > 4096:
                self._paths.clear()
            p = self._paths[rel] = os.path.join(self.root, rel.lstrip("/"))
        return p

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def read_bytes(self, rel: str, limit: int = 1 << 16) -> bytes:
        # os-level calls: the sampler reads dozens of these files per tick
        fd = os.open(self.path(rel), os.O_RDONLY)
        try:
            return os.read(fd, limit)
        finally:
            os.close(fd)

    def read(self, rel: str) -> str:
        """The file's text, stripped of whitespace and device-tree NULs. Raises OSError."""
        return self.read_bytes(rel).decode("utf-8", "replace").strip().strip("\x00").strip()

    def read_int(self, rel: str) -> int:
        """First token as an integer (``"32760 ma"`` -> 32760). Raises OSError or ValueError."""
        text = self.read(rel)
        if not text:
            raise ValueError(f"{rel} is empty")
        return int(text.split()[0])

    def try_read(self, rel: str) -> str | None:
        try:
            return self.read(rel)
        except (OSError, ValueError):
            return None

    def try_int(self, rel: str) -> int | None:
        try:
            return self.read_int(rel)
        except (OSError, ValueError):
            return None

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.path(rel))

    def isdir(self, rel: str) -> bool:
        return os.path.isdir(self.path(rel))

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching ``pattern`` (relative too), in natural order."""
        hits = _glob.glob(os.path.join(_glob.escape(self.root), pattern.lstrip("/")))
        return sorted((self.rel(h) for h in hits), key=natural_key)

    def realpath(self, rel: str) -> str:
        return os.path.realpath(self.path(rel))


def as_fs(root: "str | os.PathLike | SysFS | None" = None) -> SysFS:
    """A SysFS for ``root``; None means ``$EDGEBENCH_SYSFS_ROOT`` or ``/``."""
    if isinstance(root, SysFS):
        return root
    if root is None:
        root = os.environ.get(ROOT_ENV) or "/"
    return SysFS(root)


@dataclass
class CmdResult:
    returncode: int
    stdout: str
    stderr: str = ""


#: ``runner(argv, timeout_s) -> CmdResult``; raises FileNotFoundError when the
#: command does not exist here, subprocess.TimeoutExpired when it hangs.
Runner = Callable[[Sequence[str], float], CmdResult]


class SubprocessRunner:
    """Runs board commands for real. With a fake root, commands are looked up
    only in the root's bin folders."""

    def __init__(self, fs: SysFS | None = None):
        self.fs = fs or SysFS("/")
        if self.fs.is_real:
            self.search_path: str | None = None  # $PATH
        else:
            dirs = ("usr/local/bin", "usr/bin", "usr/sbin", "bin", "sbin")
            self.search_path = os.pathsep.join(self.fs.path(d) for d in dirs)

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.search_path)

    def _resolve(self, argv: Sequence[str]) -> list[str]:
        exe = self.which(argv[0])
        if exe is None:
            raise FileNotFoundError(f"{argv[0]}: command not found")
        return [exe, *argv[1:]]

    def __call__(self, argv: Sequence[str], timeout: float = 5.0) -> CmdResult:
        p = subprocess.run(
            self._resolve(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        return CmdResult(p.returncode, p.stdout, p.stderr)

    def popen(self, argv: Sequence[str]) -> subprocess.Popen:
        """A long-running command whose stdout is read line by line (tegrastats)."""
        return subprocess.Popen(
            self._resolve(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )


def default_runner(fs: SysFS) -> SubprocessRunner:
    return SubprocessRunner(fs)


def run_text(runner: Runner, argv: Sequence[str], timeout: float = 5.0) -> str:
    """The command's output (stdout, or stderr when stdout is empty, as vcgencmd
    prints its errors there). Raises ProbeError with one line when it cannot run."""
    try:
        res = runner(list(argv), timeout)
    except FileNotFoundError:
        raise ProbeError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise ProbeError(f"{' '.join(argv)} did not answer within {timeout:g} s") from None
    except OSError as e:
        raise ProbeError(f"{' '.join(argv)} cannot run: {describe_oserror(e)}") from None
    return res.stdout if (res.stdout or "").strip() else (res.stderr or "")
