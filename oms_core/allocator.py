"""The C allocator of a hot-path process: freed memory stays in its heap.

glibc returns the top of the heap to the OS once more than ``M_TRIM_THRESHOLD`` is free, and
serves blocks above ``M_MMAP_THRESHOLD`` with a fresh mmap each time. The engine allocates a
reply or a gateway batch of a few hundred KiB per client frame and libzmq frees it in its I/O
thread, so under both defaults the next batch faults its pages in again and the kernel zeroes
them: in the throughput benchmark that zeroing was a large share of the engine's kernel time.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 64 << 20  # larger blocks (the order table, the book arrays) still mmap
TRIM_THRESHOLD_BYTES = 256 << 20  # free heap kept for reuse before any is given back


def keep_freed_memory() -> bool:
    """Apply both thresholds to this process; False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


__all__ = ["keep_freed_memory"]
