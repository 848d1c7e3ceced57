"""Build the compiled parts of the OMS.

The extension list is explicit: every hot-path module is named here, once.
Environment switches:
  OMS_DEBUG=1  turn Cython's bounds/wraparound/initialized checks back on, -O0 -g
  OMS_ASAN=1   also build with AddressSanitizer (run with LD_PRELOAD of libasan)
  OMS_NO_EXTENSIONS=1  declare no extension (the Makefile's editable install: its `build`
               step compiles them in place, once)
"""

from __future__ import annotations

import os

import numpy
import zmq
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("OMS_DEBUG") == "1"
ASAN = os.environ.get("OMS_ASAN") == "1"

# module name -> extra sources (none so far)
EXTENSIONS: list[str] = [
    "oms_core.index",
    "oms_core.heaps",
    "oms_core.orders",
    "oms_core.ledger",
    "oms_core.risk",
    "oms_core.core",
    "oms_core.journal",
    "oms_core.bars",
    "writer._split",
    "gateways.sim.ledger",
    "gateways.sim.matching",
    "gateways.book",
    "gateways.mdpub",
    "bindings.wire.codec",
    "benchmarks.core_driver",
    "oms_core.engine.idset",
    "oms_core.engine.loop",
    "oms_core.engine.zmqio",
]

compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-strict-aliasing"]
link_args: list[str] = []
if ASAN:
    compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer"]
    link_args += ["-fsanitize=address"]

include_dirs = ["oms_core/includes", "bindings/c", numpy.get_include()]
# modules that cimport pyzmq's libzmq.pxd: zmq.h (Debian's libzmq3-dev) and pyzmq's compat
# headers at build time; no libzmq linked (bindings/libzmq.py: pyzmq's own resolves them)
USES_LIBZMQ = {"gateways.mdpub", "oms_core.engine.zmqio"}

extensions = [
    Extension(
        name,
        [name.replace(".", "/") + ".pyx"],
        include_dirs=include_dirs + (zmq.get_includes() if name in USES_LIBZMQ else []),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in EXTENSIONS
]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "overflowcheck": False,
}

setup(
    ext_modules=[] if os.environ.get("OMS_NO_EXTENSIONS") == "1" else cythonize(
        extensions,
        compiler_directives=directives,
        include_path=[".", *zmq.get_includes()],
        nthreads=int(os.environ.get("OMS_BUILD_JOBS", "2")),
        quiet=True,
    ),
)
