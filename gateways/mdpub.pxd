# cython: language_level=3
"""Compiled GW_MARKET_DATA publisher (the contract).

:class:`MdPublisher` keeps, per instrument, the last published top of book and last trade
in a C array (``md_slot_t``, allocated once), packs the 104-byte wire record
(``oms_gw_market_data_t`` from ``bindings/c/oms_wire.h``) in place and hands it to the
ZeroMQ PUB socket with libzmq's own ``zmq_send`` (the libzmq pyzmq loaded, see
bindings/libzmq.py), so publishing a changed top of book creates no Python object;
``native=False`` sends through pyzmq's ``Socket.send`` instead (same bytes, slower).

``seq`` in every frame is this publisher's own counter: gap free over the market data
stream, so a subscriber detects a frame the PUB dropped (at its HWM) by a jump in ``seq``.
"""

from libc.stdint cimport int64_t, uint32_t, uint64_t

from bindings.wire.wire cimport oms_gw_market_data_t
from gateways.book cimport L2Book

# ---- structs ---------------------------------------------------------------

cdef struct md_slot_t:
    uint32_t instrument   # engine instrument id
    int64_t bid           # last published best bid price (0: none)
    int64_t bid_qty
    int64_t ask           # last published best ask price (0: none)
    int64_t ask_qty
    int64_t last          # last trade price (0: none)
    int64_t last_qty

# ---- the publisher ---------------------------------------------------------

cdef class MdPublisher:
    cdef:
        object _socket        # the pyzmq PUB socket: keeps _handle alive; _closed read per send
        void* _handle         # its libzmq socket
        bint _native          # zmq_send directly (else _socket.send)
        oms_gw_market_data_t _frame
        md_slot_t* _slots
        readonly int capacity
        """Most instruments (slots)."""
        readonly int n_slots
        """Slots in use."""
        readonly uint64_t seq
        """Sequence number of the last frame sent (market data only, gap free)."""
        readonly uint64_t n_published
        """Frames handed to ZeroMQ."""
        readonly uint64_t n_dropped
        """Frames ZeroMQ refused at once (EAGAIN); a PUB normally drops silently instead."""

    cdef md_slot_t* _slot(self, int slot) except NULL
    cdef int _send(self) except -1
    cpdef int add(self, uint32_t instrument) except -1
    cpdef bint top_from_book(self, int slot, L2Book book) except -1
    cpdef bint set_top(self, int slot, int64_t bid, int64_t bid_qty, int64_t ask,
                       int64_t ask_qty) except -1
    cpdef int set_last(self, int slot, int64_t last, int64_t last_qty) except -1
    cpdef int publish(self, int slot, int64_t exch_ts_ns, int64_t gw_ts_ns, int flags) except -1
    cpdef int publish_book(self, int slot, L2Book book, int64_t gw_ts_ns, int flags) except -1
