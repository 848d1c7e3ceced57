"""Where the libzmq that pyzmq loaded lives, for compiled code that calls it directly.

pyzmq bundles libzmq in its wheel under a hashed file name (or uses the system one); compiled
modules that bypass pyzmq on a hot path (gateways/mdpub.pyx, oms_core/engine/zmqio.pyx)
dlopen that same library with RTLD_NOLOAD, so both sides share one libzmq and one context.
"""

from __future__ import annotations


def libzmq_path() -> str | None:
    """Path of the libzmq pyzmq loaded, or None where it cannot be told (non-Linux)."""
    import zmq.backend.cython._zmq  # noqa: F401  (make sure it is loaded)

    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").partition("/")[2]
                if path and "libzmq" in path.rpartition("/")[2]:
                    return "/" + path
    except OSError:
        pass
    return None
