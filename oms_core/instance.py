"""One instance per directory: an ``flock``-ed file ``oms.lock`` holding the holder's PID.

``oms run`` takes the lock of its run directory and of its journal directory before it writes
anything (keys, child configurations, logs); each engine takes the lock of its own journal
directory before it opens the journal. The kernel drops the lock when the holder exits, also
on kill -9, so a stale file never blocks a restart. The file is never deleted: a process that
opened it just before a delete would lock an orphaned inode and a third could start beside it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "oms.lock"


class InstanceLocked(RuntimeError):
    """Another process holds the lock of ``directory``."""

    def __init__(self, directory: Path, holder: str) -> None:
        self.directory = directory
        self.holder = holder
        super().__init__(f"{directory} is in use by another instance (pid {holder or '?'}, "
                         f"lock {directory / LOCK_NAME}); refusing to start a second one")


class InstanceLock:
    """The lock of one directory; :meth:`acquire` or :class:`InstanceLocked`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.fd: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / LOCK_NAME

    def acquire(self) -> InstanceLock:
        """Take the lock (the directory is made if missing) and write this process's PID."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise InstanceLocked(self.directory, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_all(directories: list[str | Path]) -> list[InstanceLock]:
    """Lock every directory (distinct paths, in order) or none: release the taken ones on a
    refusal and raise it."""
    taken: list[InstanceLock] = []
    seen: set[Path] = set()
    try:
        for d in directories:
            p = Path(d).resolve()
            if p in seen:
                continue
            seen.add(p)
            taken.append(InstanceLock(p).acquire())
    except InstanceLocked:
        for lock in taken:
            lock.release()
        raise
    return taken


__all__ = ["LOCK_NAME", "InstanceLock", "InstanceLocked", "acquire_all"]
