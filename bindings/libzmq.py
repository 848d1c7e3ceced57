"""The libzmq pyzmq loaded, made visible to the compiled modules that call it directly.

gateways/mdpub.pyx and oms_core/engine/zmqio.pyx cimport pyzmq's ``libzmq.pxd`` (zmq.h at
build time) but are not linked against any libzmq: their ``zmq_*`` symbols stay undefined
and are resolved, when the extension is loaded, from the libzmq pyzmq already loaded (the one
in its wheel, under a hashed name). That library is loaded RTLD_LOCAL, so
:func:`share_with_extensions` promotes it to global scope first: both sides then use one
libzmq, and a socket made by pyzmq is a socket of the compiled code.
"""

from __future__ import annotations

import ctypes
import os


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


def share_with_extensions() -> None:
    """Make pyzmq's libzmq resolve the undefined ``zmq_*`` symbols of extensions loaded after
    this call (idempotent; no second libzmq is ever loaded: RTLD_NOLOAD)."""
    path = libzmq_path()
    if path is None:
        raise ImportError("the libzmq pyzmq loaded was not found in /proc/self/maps")
    ctypes.CDLL(path, mode=os.RTLD_GLOBAL | os.RTLD_NOLOAD)
