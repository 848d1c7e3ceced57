"""Compiled benchmark driver for ``oms_core.core.OmsCore`` (see core_driver.pxd).

Every loop here runs in C over the core's cdef twins (``c_submit``, ``c_cancel``, ``c_on_ack``,
``c_on_fill``, ``c_on_canceled``, ``c_mark_to_market``), so no Python call is inside a timed
region. Each function returns wall time in nanoseconds (CLOCK_MONOTONIC) with the number of
non-OK results and the last non-OK code, so the caller can prove that the timed path was the
accepting one.

Order arguments are made by ``Flow.shape`` before a clock starts, from the order's index ``k``;
``benchmarks/bench_core.py`` has the same formula in Python (``order_shape``) so the reference
model and the Python API get the same orders.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from oms_core.core cimport OmsCore
from oms_core.types cimport (
    R_OK,
    SIDE_BUY,
    SIDE_SELL,
    TIF_GTC,
    TYPE_LIMIT,
    instrument_t,
)

# batched() modes: which step of a batch is timed
MODE_SUBMIT = 1     # time submit; then cancel + venue confirm, untimed
MODE_CANCEL = 2     # submit untimed; time the cancel requests; venue confirm untimed
MODE_FILL = 3       # submit + ack untimed; time the full fills (with position update)
MODE_CONFIRM = 4    # submit + cancel untimed; time the venue cancel confirms (on_canceled)


cdef int64_t now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef class Flow:
    """Room for the arguments of ``capacity`` orders (see core_driver.pxd)."""

    def __cinit__(self, uint64_t capacity):
        if capacity == 0:
            raise ValueError("Flow capacity must be positive")
        self.capacity = capacity
        self.account = <uint32_t*>PyMem_Malloc(capacity * sizeof(uint32_t))
        self.instrument = <uint32_t*>PyMem_Malloc(capacity * sizeof(uint32_t))
        self.side = <int*>PyMem_Malloc(capacity * sizeof(int))
        self.price = <int64_t*>PyMem_Malloc(capacity * sizeof(int64_t))
        self.order_id = <uint64_t*>PyMem_Malloc(capacity * sizeof(uint64_t))
        if (self.account == NULL or self.instrument == NULL or self.side == NULL
                or self.price == NULL or self.order_id == NULL):
            raise MemoryError(f"Flow: cannot allocate {capacity} orders")

    def __dealloc__(self):
        PyMem_Free(self.account)
        PyMem_Free(self.instrument)
        PyMem_Free(self.side)
        PyMem_Free(self.price)
        PyMem_Free(self.order_id)

    def shape(self, OmsCore core, uint64_t k0, uint64_t n, uint32_t n_acc, uint32_t n_inst,
              int side_mode, int64_t off_min, int64_t off_span):
        """Make orders k0 .. k0+n-1: accounts rotate fastest, then instruments; side_mode 0
        alternates the side every round of (account, instrument) pairs (1 buy, 2 sell); buys
        rest below the instrument's last price and sells above it, off_min ..
        off_min+off_span-1 ticks away, so nothing crosses."""
        if n > self.capacity:
            raise ValueError(f"{n} orders do not fit a Flow of {self.capacity}")
        if n_acc == 0 or n_inst == 0 or off_span <= 0 or n_inst > core.n_instruments:
            raise ValueError("bad flow shape")
        self._shape(core, k0, n, n_acc, n_inst, side_mode, off_min, off_span)

    cdef void _shape(self, OmsCore core, uint64_t k0, uint64_t n, uint32_t n_acc,
                     uint32_t n_inst, int side_mode, int64_t off_min,
                     int64_t off_span) noexcept nogil:
        cdef uint64_t i, k, pairs = <uint64_t>n_acc * n_inst
        cdef int64_t off
        cdef instrument_t* inst
        self.k0 = k0
        self.n = n
        for i in range(n):
            k = k0 + i
            self.account[i] = <uint32_t>(k % n_acc)
            self.instrument[i] = <uint32_t>((k / n_acc) % n_inst)
            if side_mode == 0:
                self.side[i] = SIDE_BUY if (k / pairs) % 2 == 0 else SIDE_SELL
            else:
                self.side[i] = side_mode
            inst = &core.instruments[self.instrument[i]]
            off = off_min + <int64_t>((k * 7919) % <uint64_t>off_span)
            if self.side[i] == SIDE_BUY:
                self.price[i] = inst.last - off * inst.tick
            else:
                self.price[i] = inst.last + off * inst.tick
            self.order_id[i] = 0


def clock_overhead(uint64_t n):
    """Nanoseconds one clock_gettime call costs (mean of n back-to-back calls)."""
    cdef uint64_t i
    cdef int64_t x = 0
    cdef int64_t t0 = now_ns()
    for i in range(n):
        x += now_ns() & 1
    return (now_ns() - t0) / <double>n if n else 0.0


def submit_loop(OmsCore core, Flow f, uint32_t strategy, int64_t qty, int64_t ts0,
                int64_t ts_step):
    """Submit the flow's orders as GTC limits, clearing the event queue after each, and keep
    their ids. Return (ns, rejects, last reject code)."""
    cdef uint64_t i, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t ts = ts0
    cdef int64_t t0 = now_ns()
    for i in range(f.n):
        code = core.c_submit(f.account[i], strategy, f.instrument[i], f.k0 + i + 1, f.side[i],
                             TYPE_LIMIT, TIF_GTC, f.price[i], 0, qty, 0, 0, ts, 0,
                             &f.order_id[i])
        core.clear_events()
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return now_ns() - t0, rejects, last_code


def submit_latency(OmsCore core, Flow f, uint32_t strategy, int64_t qty, int64_t ts0,
                   int64_t ts_step, int64_t[::1] out):
    """Like submit_loop, but time each submit on its own into out[i] (the clock's own cost is
    included; see clock_overhead). Return (rejects, last reject code)."""
    cdef uint64_t i, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t t0, ts = ts0
    if out.shape[0] < <Py_ssize_t>f.n:
        raise ValueError("out shorter than the flow")
    for i in range(f.n):
        t0 = now_ns()
        code = core.c_submit(f.account[i], strategy, f.instrument[i], f.k0 + i + 1, f.side[i],
                             TYPE_LIMIT, TIF_GTC, f.price[i], 0, qty, 0, 0, ts, 0,
                             &f.order_id[i])
        core.clear_events()
        out[i] = now_ns() - t0
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return rejects, last_code


def cancel_loop(OmsCore core, Flow f, int64_t ts0, int64_t ts_step):
    """Request a cancel of each of the flow's orders. Return (ns, rejects, last code)."""
    cdef uint64_t i, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t ts = ts0
    cdef int64_t t0 = now_ns()
    for i in range(f.n):
        code = core.c_cancel(f.account[i], f.order_id[i], ts)
        core.clear_events()
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return now_ns() - t0, rejects, last_code


def confirm_cancel_loop(OmsCore core, Flow f, int64_t ts0, int64_t ts_step):
    """Venue confirms each cancel (on_canceled). Return (ns, rejects, last code)."""
    cdef uint64_t i, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t ts = ts0
    cdef int64_t t0 = now_ns()
    for i in range(f.n):
        code = core.c_on_canceled(f.order_id[i], ts)
        core.clear_events()
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return now_ns() - t0, rejects, last_code


def ack_loop(OmsCore core, Flow f, int64_t ts0, int64_t ts_step):
    """Venue acknowledges each of the flow's orders. Return (ns, rejects, last code)."""
    cdef uint64_t i, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t ts = ts0
    cdef int64_t t0 = now_ns()
    for i in range(f.n):
        code = core.c_on_ack(f.order_id[i], ts)
        core.clear_events()
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return now_ns() - t0, rejects, last_code


def fill_loop(OmsCore core, Flow f, int64_t qty, int64_t fee, uint32_t fee_asset,
              uint64_t trade0, int64_t ts0, int64_t ts_step):
    """Fill each of the flow's orders in full at its limit price (trade id trade0 + i).
    Return (ns, rejects, last code)."""
    cdef uint64_t i, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t ts = ts0
    cdef int64_t t0 = now_ns()
    for i in range(f.n):
        code = core.c_on_fill(f.order_id[i], trade0 + i, qty, f.price[i], fee, fee_asset, 1,
                              ts)
        core.clear_events()
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return now_ns() - t0, rejects, last_code


def cycle_loop(OmsCore core, Flow f, uint32_t strategy, int64_t qty, int64_t fee,
               uint32_t fee_asset, uint64_t trade0, int64_t ts0, int64_t ts_step):
    """Per order of the flow: submit -> venue ack -> one full fill (position, P&L and
    balances update), events cleared after each step. With a flow of side_mode 0 positions go
    flat -> long -> flat. Return (ns, rejects, last reject code)."""
    cdef uint64_t i, oid = 0, rejects = 0
    cdef int code, last_code = 0
    cdef int64_t ts = ts0
    cdef int64_t t0 = now_ns()
    for i in range(f.n):
        code = core.c_submit(f.account[i], strategy, f.instrument[i], f.k0 + i + 1, f.side[i],
                             TYPE_LIMIT, TIF_GTC, f.price[i], 0, qty, 0, 0, ts, 0, &oid)
        core.clear_events()
        if code == R_OK:
            code = core.c_on_ack(oid, ts + 1)
            core.clear_events()
        if code == R_OK:
            code = core.c_on_fill(oid, trade0 + i, qty, f.price[i], fee, fee_asset, 1, ts + 2)
            core.clear_events()
        if code != R_OK:
            rejects += 1
            last_code = code
        ts += ts_step
    return now_ns() - t0, rejects, last_code


def batched(OmsCore core, int mode, uint64_t n_batches, uint32_t batch, uint32_t n_acc,
            uint32_t n_inst, uint32_t strategy, int64_t off_min, int64_t off_span,
            int64_t qty, int64_t fee, uint32_t fee_asset, uint64_t k0, uint64_t trade0,
            int64_t ts0, int64_t ts_step, Flow f):
    """Run n_batches batches of `batch` orders (side_mode 0) and time one step of each (see
    MODE_*): the other steps bring the book back, so it holds at most `batch` of these orders
    at any time. Each batch's arguments are made before its clock starts; f is scratch of at
    least `batch` orders. Return (timed ns, timed ops, rejects, last reject code)."""
    cdef uint64_t b, i, rejects = 0, timed_ops = 0
    cdef int code, last_code = 0
    cdef int64_t t0, timed = 0, ts = ts0
    if f.capacity < batch:
        raise ValueError("scratch flow smaller than a batch")
    if mode < MODE_SUBMIT or mode > MODE_CONFIRM:
        raise ValueError(f"unknown mode {mode}")
    if n_acc == 0 or n_inst == 0 or off_span <= 0 or n_inst > core.n_instruments:
        raise ValueError("bad flow shape")
    for b in range(n_batches):
        f._shape(core, k0 + b * batch, batch, n_acc, n_inst, 0, off_min, off_span)
        # submit
        t0 = now_ns()
        for i in range(batch):
            code = core.c_submit(f.account[i], strategy, f.instrument[i], f.k0 + i + 1,
                                 f.side[i], TYPE_LIMIT, TIF_GTC, f.price[i], 0, qty, 0, 0, ts,
                                 0, &f.order_id[i])
            core.clear_events()
            if code != R_OK:
                rejects += 1
                last_code = code
            ts += ts_step
        if mode == MODE_SUBMIT:
            timed += now_ns() - t0
            timed_ops += batch
        if mode == MODE_FILL:
            for i in range(batch):
                core.c_on_ack(f.order_id[i], ts)
                core.clear_events()
                ts += ts_step
            t0 = now_ns()
            for i in range(batch):
                code = core.c_on_fill(f.order_id[i], trade0 + i, qty, f.price[i], fee,
                                      fee_asset, 1, ts)
                core.clear_events()
                if code != R_OK:
                    rejects += 1
                    last_code = code
                ts += ts_step
            timed += now_ns() - t0
            timed_ops += batch
            trade0 += batch
            continue
        # cancel request
        t0 = now_ns()
        for i in range(batch):
            code = core.c_cancel(f.account[i], f.order_id[i], ts)
            core.clear_events()
            if code != R_OK and mode == MODE_CANCEL:
                rejects += 1
                last_code = code
            ts += ts_step
        if mode == MODE_CANCEL:
            timed += now_ns() - t0
            timed_ops += batch
        # venue confirms
        t0 = now_ns()
        for i in range(batch):
            code = core.c_on_canceled(f.order_id[i], ts)
            core.clear_events()
            if code != R_OK and mode == MODE_CONFIRM:
                rejects += 1
                last_code = code
            ts += ts_step
        if mode == MODE_CONFIRM:
            timed += now_ns() - t0
            timed_ops += batch
    return timed, timed_ops, rejects, last_code


def mtm_loop(OmsCore core, uint64_t reps, int64_t ts0):
    """Mark every position to market reps times. Return ns."""
    cdef uint64_t r
    cdef int64_t t0 = now_ns()
    for r in range(reps):
        core.c_mark_to_market(ts0 + <int64_t>r)
    return now_ns() - t0
