# cython: language_level=3
"""Compiled GW_MARKET_DATA publisher; see mdpub.pxd for the contract."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport EAGAIN, errno
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memset
from zmq.backend.cython.libzmq cimport ZMQ_DONTWAIT, zmq_send

from bindings.wire.wire cimport (
    OMS_MSG_GW_MARKET_DATA, OMS_WIRE_MAGIC, OMS_WIRE_VERSION, oms_gw_market_data_t,
)
from gateways.book cimport L2Book


cdef class MdPublisher:
    """Publish GW_MARKET_DATA on a ZeroMQ PUB socket without Python objects per message.

    Parameters
    ----------
    socket : zmq.Socket
        The PUB socket (kept referenced; used only from the event loop's thread).
    capacity : int
        Most instruments.
    native : bool
        Send through libzmq's ``zmq_send`` directly (default); False forces the pyzmq path.
    """

    def __cinit__(self, socket, int capacity=256, bint native=True):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._slots = <md_slot_t*>PyMem_Malloc(capacity * sizeof(md_slot_t))
        if self._slots == NULL:
            raise MemoryError()
        memset(self._slots, 0, capacity * sizeof(md_slot_t))
        self.capacity = capacity
        self._socket = socket
        self._handle = <void*><size_t>socket.underlying
        self._native = native
        memset(&self._frame, 0, sizeof(oms_gw_market_data_t))
        self._frame.hdr.magic = OMS_WIRE_MAGIC
        self._frame.hdr.version = OMS_WIRE_VERSION
        self._frame.hdr.msg_type = OMS_MSG_GW_MARKET_DATA
        self._frame.hdr.length = sizeof(oms_gw_market_data_t)

    def __dealloc__(self):
        PyMem_Free(self._slots)

    @property
    def native(self):
        """True when frames go through libzmq's ``zmq_send`` directly."""
        return self._native

    cpdef int add(self, uint32_t instrument) except -1:
        """Add an instrument; return its slot."""
        if self.n_slots >= self.capacity:
            raise ValueError("MdPublisher is full")
        self._slots[self.n_slots].instrument = instrument
        self.n_slots += 1
        return self.n_slots - 1

    cdef md_slot_t* _slot(self, int slot) except NULL:
        if slot < 0 or slot >= self.n_slots:
            raise IndexError("no such slot")
        return &self._slots[slot]

    cpdef bint top_from_book(self, int slot, L2Book book) except -1:
        """Take the book's best bid/ask into ``slot``; return True if it changed."""
        cdef md_slot_t* s = self._slot(slot)
        cdef int64_t b = 0, bq = 0, a = 0, aq = 0
        # the book keeps the best level LAST; asks are stored as -price
        if book._nb:
            b = book._bids[book._nb - 1].key
            bq = book._bids[book._nb - 1].qty
        if book._na:
            a = -book._asks[book._na - 1].key
            aq = book._asks[book._na - 1].qty
        if b == s.bid and bq == s.bid_qty and a == s.ask and aq == s.ask_qty:
            return False
        s.bid = b
        s.bid_qty = bq
        s.ask = a
        s.ask_qty = aq
        return True

    cpdef bint set_top(self, int slot, int64_t bid, int64_t bid_qty, int64_t ask,
                       int64_t ask_qty) except -1:
        """Set the top of ``slot`` (e.g. from a bookTicker); return True if it changed."""
        cdef md_slot_t* s = self._slot(slot)
        if bid == s.bid and bid_qty == s.bid_qty and ask == s.ask and ask_qty == s.ask_qty:
            return False
        s.bid = bid
        s.bid_qty = bid_qty
        s.ask = ask
        s.ask_qty = ask_qty
        return True

    cpdef int set_last(self, int slot, int64_t last, int64_t last_qty) except -1:
        """Set the last trade of ``slot``."""
        cdef md_slot_t* s = self._slot(slot)
        s.last = last
        s.last_qty = last_qty
        return 0

    cdef int _send(self) except -1:
        cdef int rc
        if self._socket._closed:  # pyzmq's own flag: never hand libzmq a freed socket
            import zmq
            raise zmq.ZMQError(zmq.ENOTSOCK)
        if self._native:
            rc = zmq_send(self._handle, &self._frame, sizeof(oms_gw_market_data_t),
                             ZMQ_DONTWAIT)
            if rc < 0:
                if errno == EAGAIN:
                    self.n_dropped += 1
                    return 1
                raise OSError(errno, "zmq_send failed")
        else:
            import zmq
            try:
                self._socket.send(PyBytes_FromStringAndSize(<char*>&self._frame,
                                                            sizeof(oms_gw_market_data_t)),
                                  zmq.NOBLOCK)
            except zmq.Again:
                self.n_dropped += 1
                return 1
        self.n_published += 1
        return 0

    cpdef int publish(self, int slot, int64_t exch_ts_ns, int64_t gw_ts_ns,
                      int flags) except -1:
        """Pack and send the current state of ``slot``; 0 sent, 1 refused (EAGAIN)."""
        cdef md_slot_t* s = self._slot(slot)
        cdef oms_gw_market_data_t* f = &self._frame
        self.seq += 1
        f.hdr.seq = self.seq
        f.hdr.send_ns = gw_ts_ns
        f.bid = s.bid
        f.bid_qty = s.bid_qty
        f.ask = s.ask
        f.ask_qty = s.ask_qty
        f.last = s.last
        f.last_qty = s.last_qty
        f.exch_ts_ns = exch_ts_ns
        f.gw_ts_ns = gw_ts_ns
        f.instrument = s.instrument
        f.md_flags = <unsigned char>flags
        return self._send()

    cpdef int publish_book(self, int slot, L2Book book, int64_t gw_ts_ns,
                           int flags) except -1:
        """Publish ``slot`` if the book's top changed (hot path); return 1 if published.

        The venue time is the book's last event time ``E``.
        """
        if not self.top_from_book(slot, book):
            return 0
        self.publish(slot, book.event_time_ms * 1000000, gw_ts_ns, flags)
        return 1

    def top(self, int slot):
        """``(bid, bid_qty, ask, ask_qty, last, last_qty)`` last set for ``slot``."""
        cdef md_slot_t* s = self._slot(slot)
        return (s.bid, s.bid_qty, s.ask, s.ask_qty, s.last, s.last_qty)

    def frame(self):
        """Copy of the last packed frame (bytes; tests and debugging)."""
        return PyBytes_FromStringAndSize(<char*>&self._frame, sizeof(oms_gw_market_data_t))
