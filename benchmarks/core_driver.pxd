# core_driver: C loops that drive oms_core.core.OmsCore through its cdef twins for the
# benchmarks (bench_core.py). A leaf: nothing cimports it; this file is the contract a reader
# starts from.

from libc.stdint cimport int64_t, uint32_t, uint64_t

from oms_core.core cimport OmsCore


# Monotonic wall clock in nanoseconds (clock_gettime(CLOCK_MONOTONIC)).
cdef int64_t now_ns() noexcept nogil


cdef class Flow:
    """The arguments of n benchmark orders, made before any clock starts, and the ids the core
    gave them. Order i of the flow is order k = k0 + i of the benchmark (client id k + 1)."""
    cdef uint32_t* account
    cdef uint32_t* instrument
    cdef int* side
    cdef int64_t* price
    cdef uint64_t* order_id
    cdef readonly uint64_t capacity
    cdef readonly uint64_t n
    cdef readonly uint64_t k0

    cdef void _shape(self, OmsCore core, uint64_t k0, uint64_t n, uint32_t n_acc,
                     uint32_t n_inst, int side_mode, int64_t off_min,
                     int64_t off_span) noexcept nogil
