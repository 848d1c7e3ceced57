"""A small full disk for the disk-full tests: a real tmpfs, or RLIMIT_FSIZE when mounting is
not permitted.

``tmpfs``: a holder process ``unshare -m --propagation private sh -c 'mount -t tmpfs ...;
exec sleep'`` owns a private mount namespace with a tmpfs of a few MiB; every other process
reaches it through ``/proc/<holder pid>/root/<dir>`` (so nothing is mounted in the test's own
namespace and nothing outlives the holder). The test fills it with a filler file
(ENOSPC, "No space left on device") and frees space by deleting the filler.

``rlimit``: the process under test runs with ``RLIMIT_FSIZE`` (SIGXFSZ ignored), so writing a
file past the limit fails with EFBIG ("File too large"); space "returns" by restarting the
process without the limit.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository (the children's working directory)

# exec the command with a per-file size limit; SIG_IGN survives exec, so a write past the
# limit fails with EFBIG instead of killing the process with SIGXFSZ
RLIMIT_WRAPPER = [
    sys.executable, "-c",
    "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY)); "
    "os.execv(sys.argv[2], sys.argv[2:])",
]


def rlimit_prefix(limit_bytes: int) -> list[str]:
    """argv prefix that runs the rest of the argv with RLIMIT_FSIZE = ``limit_bytes``."""
    return [*RLIMIT_WRAPPER, str(limit_bytes)]


def tmpfs_supported() -> str:
    """'' when a private tmpfs can be mounted here, else why not."""
    if os.environ.get("OMS_DISKFULL_MODE") == "rlimit":
        return "OMS_DISKFULL_MODE=rlimit"
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        return "not root, or no unshare(1) / nsenter(1)"
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
                       capture_output=True, text=True, timeout=10)
    return "" if r.returncode == 0 else f"mount not permitted: {r.stderr.strip()}"


@dataclass(frozen=True)
class Tmpfs:
    """A tmpfs in a private mount namespace."""

    inside: Path
    """Its path for processes started with :attr:`prefix` (inside the namespace)."""
    outside: Path
    """The same directory for this process (``/proc/<holder>/root/...``); plain file I/O only:
    DuckDB resolves the ``/proc/<pid>/root`` symlink and would miss the mount."""
    prefix: list[str]
    """argv prefix (``nsenter -t <holder> -m --wd=ROOT --``): runs a command inside."""


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Tmpfs]:
    """A tmpfs of ``size`` (e.g. "4m") mounted at ``where`` in a private mount namespace
    held by a sleeping process; gone when the holder and every process inside have exited."""
    where.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs -o size={size} tmpfs '{where}' && echo mounted && exec sleep 600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        r, _, _ = select.select([holder.stdout], [], [], 10)
        line = holder.stdout.readline() if r else ""
        if line.strip() != "mounted":
            err = holder.stderr.read() if holder.stderr else ""
            raise RuntimeError(f"tmpfs mount failed: {err}")
        yield Tmpfs(where, Path(f"/proc/{holder.pid}/root{where}"),
                    ["nsenter", "-t", str(holder.pid), "-m", f"--wd={ROOT}", "--"])
    finally:
        holder.kill()
        holder.wait(10)


@contextlib.contextmanager
def plain_dir(path: Path) -> Iterator[Tmpfs]:
    """A plain directory in the shape of a :class:`Tmpfs` (the rlimit variants mount nothing)."""
    path.mkdir(parents=True, exist_ok=True)
    yield Tmpfs(path, path, [])


def fill(directory: Path, name: str = "filler") -> int:
    """Write a filler file until the file system is full (ENOSPC); return its size."""
    path = directory / name
    chunk = b"\0" * 65536
    n = 0
    with open(path, "wb", buffering=0) as f:
        for _ in range(100_000):  # bounded: a tmpfs of a few MiB fills in ~100 chunks
            try:
                n += f.write(chunk)
            except OSError:
                break
        else:
            raise RuntimeError(f"{directory} did not fill up")
        # the last partial chunk may have used the final pages; write smaller pieces too
        for size in (4096, 512, 64, 1):
            for _ in range(256):
                try:
                    n += f.write(b"\0" * size)
                except OSError:
                    break
    return n


class LineReader:
    """Read a child's merged stdout/stderr line by line with deadlines (no unbounded wait)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float) -> str:
        """Read until a line containing ``text``; return it. Raise AssertionError on timeout
        or when the process exits first."""
        for ln in self.lines:
            if text in ln:
                return ln
        end = time.monotonic() + timeout
        out = self.proc.stdout
        assert out is not None
        while time.monotonic() < end:
            r, _, _ = select.select([out], [], [], 0.1)
            if not r:
                continue
            ln = out.readline()
            if not ln:
                break
            self.lines.append(ln)
            if text in ln:
                return ln
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + "".join(self.lines))

    def rest(self, timeout: float = 30.0) -> str:
        """Wait for the exit; return everything the child wrote."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(out or "")
        return "".join(self.lines)
