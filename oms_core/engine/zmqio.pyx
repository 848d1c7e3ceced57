"""The engine's client path over libzmq (see zmqio.pxd): poll, receive, handle, send."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_Size
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset, strcmp, strlen
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from zmq.backend.cython.libzmq cimport (
    ZMQ_DONTWAIT, ZMQ_EVENTS, ZMQ_POLLIN, ZMQ_SNDMORE, zmq_getsockopt, zmq_msg_close,
    zmq_msg_data, zmq_msg_gets, zmq_msg_init, zmq_msg_more, zmq_msg_recv, zmq_msg_size,
    zmq_msg_t, zmq_send,
)

from oms_core.engine.loop cimport ROLE_PUBLISHER, EngineLoop, OutBuf

import zmq

cdef extern from "<poll.h>" nogil:
    int c_poll "poll"(pollfd* fds, unsigned long nfds, int timeout)
    enum: POLLIN

cdef inline int64_t _now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


# Writer records are coalesced: one frame per WRITER_DELAY_US or per WRITER_FRAME_BYTES,
# whichever comes first (the journal already holds them, so a crash loses nothing). A record
# is at most 65,535 bytes (16-bit length), so one always fits an empty buffer.
cdef enum:
    WRITER_FRAME_BYTES = 64 * 1024
WRITER_DELAY_US = 2000


def client_pump(engine, EngineLoop loop, router, list others, writer, dict gw_orders,
                dict gw_pending, sessions, counters, answers, registry,
                int64_t writer_delay_us=WRITER_DELAY_US):
    """Build the :class:`ClientPump` of ``engine``, or return None without native libzmq.

    ``others`` are the sockets polled beside ``router`` (bit ``1 << (i + 1)`` of ``serve``'s
    answer is ``others[i]``); ``gw_orders`` / ``gw_pending`` map an exchange id to its PUSH
    socket and its retry deque; ``sessions`` / ``counters`` / ``answers`` are the server's
    own dict / dict / list (read and updated in place); ``registry`` is the KeyRegistry
    when security is on, else None. Writer records wait in the pump at most
    ``writer_delay_us`` microseconds (0: sent at every flush).
    """
    cdef ClientPump p = ClientPump.__new__(ClientPump)
    p._setup(engine, loop, router, others, writer, gw_orders, gw_pending, sessions, counters,
             answers, registry)
    p.w_delay_ns = writer_delay_us * 1000
    return p


cdef inline Py_ssize_t _whole_records(const uint8_t* p, Py_ssize_t room) noexcept:
    # bytes of the leading whole records of ``p`` that fit in ``room``
    cdef Py_ssize_t n = 0, length
    while n + 32 <= room:
        length = (<const uint16_t*>(p + n + 6))[0]
        if length < 32 or n + length > room:
            break
        n += length
    return n


cdef inline Py_ssize_t _n_frames(OutBuf b) noexcept:
    return b.n_ends + (1 if b.n > (b.ends[b.n_ends - 1] if b.n_ends else 0) else 0)


cdef inline void* _handle(object sock):
    return <void*><size_t>sock.underlying


cdef class ClientPump:
    """Poll the engine's sockets and serve the client ROUTER without pyzmq per message.

    Made by :func:`client_pump`; used only from the engine loop's thread, and only while the
    sockets it was given are open.
    """

    def __cinit__(self):
        self.max_batch = 256
        self.w_max = WRITER_FRAME_BYTES
        self.w_buf = <uint8_t*>PyMem_Malloc(self.w_max)
        if self.w_buf == NULL:
            raise MemoryError("ClientPump: allocation failed")
        zmq_msg_init(&self.m_rid)
        zmq_msg_init(&self.m_body)

    def __dealloc__(self):
        zmq_msg_close(&self.m_rid)
        zmq_msg_close(&self.m_body)
        PyMem_Free(self.items)
        PyMem_Free(self.pfds)
        PyMem_Free(self.gw)
        PyMem_Free(self.w_buf)

    def _setup(self, engine, EngineLoop loop, router, list others, writer, dict gw_orders,
               dict gw_pending, dict sessions, dict counters, list answers, registry):
        cdef Py_ssize_t i
        self.engine = engine
        self.loop = loop
        self.socks = [router] + others
        self.n_items = len(self.socks)
        self.items = <zmq_pollitem_t*>PyMem_Malloc(self.n_items * sizeof(zmq_pollitem_t))
        self.pfds = <pollfd*>PyMem_Malloc(self.n_items * sizeof(pollfd))
        self.n_gw = len(loop.gw)
        self.gw = <void**>PyMem_Malloc((self.n_gw if self.n_gw else 1) * sizeof(void*))
        if self.items == NULL or self.gw == NULL or self.pfds == NULL:
            raise MemoryError("ClientPump: allocation failed")
        memset(self.items, 0, self.n_items * sizeof(zmq_pollitem_t))
        memset(self.pfds, 0, self.n_items * sizeof(pollfd))
        for i in range(self.n_items):
            self.items[i].socket = _handle(self.socks[i])
            self.items[i].fd = self.socks[i].getsockopt(zmq.FD)
            self.items[i].events = ZMQ_POLLIN
            self.pfds[i].fd = self.items[i].fd
            self.pfds[i].events = POLLIN
        self.router = self.items[0].socket
        self.writer = NULL
        if writer is not None:
            self.writer = _handle(writer)
            self.socks.append(writer)
        self.gw_pending = []
        for i in range(self.n_gw):
            s = gw_orders.get(i)
            self.gw[i] = _handle(s) if s is not None else NULL
            if s is not None:
                self.socks.append(s)
            self.gw_pending.append(gw_pending.get(i) if s is not None else None)
        self.sessions = sessions
        self.counters = counters
        self.answers = answers
        self.registry = registry
        self.secure = registry is not None

    # ------------------------------------------------------------------------- wake-ups
    def serve(self, int64_t deadline_ns):
        """Serve the ROUTER until ``deadline_ns`` (time.time_ns clock) or another input is ready.

        Returns a bit mask: bit ``i + 1`` set when ``others[i]`` is readable (0: the deadline
        passed, a signal arrived, the engine is stopping, or a full ``max_batch`` was served
        and the others get a turn). Signals interrupt the wait; their Python handlers run
        here.
        """
        cdef int ready, rc, i, n
        cdef int64_t now, wait
        if self.items == NULL:
            raise RuntimeError("ClientPump: not set up (use client_pump)")
        # Python ran since the last call (its sends and receives may have taken a socket's
        # wake-up signal): ask every socket once
        ready = self._events(0, self.n_items)
        while True:
            if ready & 1:
                self.n_wakeups += 1
                n = self.drain()
                if n >= self.max_batch:  # more may wait: give the others and timers a turn
                    return (ready & ~1) | self._events(1, self.n_items)
                ready &= ~1  # drained to EAGAIN: the ROUTER's FD is armed again
            if ready:
                return ready
            PyErr_CheckSignals()
            if self.engine._stopping:
                return 0
            now = _now()
            if self.w_n and now - self.w_first_ns >= self.w_delay_ns:
                self._send_writer()
            if now >= deadline_ns:
                return 0
            wait = deadline_ns - now
            if self.w_n and self.w_first_ns + self.w_delay_ns - now < wait:
                wait = self.w_first_ns + self.w_delay_ns - now
            wait = (wait + 999999) // 1000000
            with nogil:
                rc = c_poll(self.pfds, <unsigned long>self.n_items, <int>wait)
            if rc < 0:
                if errno == EINTR:
                    continue
                raise OSError(errno, "poll failed")
            if rc > 0:
                # a ZMQ_FD that fired means commands for that socket: ZMQ_EVENTS runs them
                for i in range(self.n_items):
                    if self.pfds[i].revents:
                        ready |= self._events(i, i + 1)

    cdef int _events(self, int lo, int hi) except -1:
        # bit i: socket i (lo <= i < hi) has a message to read
        cdef int i, ev
        cdef size_t size
        cdef int ready = 0
        for i in range(lo, hi):
            ev = 0
            size = sizeof(int)
            if zmq_getsockopt(self.items[i].socket, ZMQ_EVENTS, &ev, &size) < 0:
                raise zmq.ZMQError(errno)
            if ev & ZMQ_POLLIN:
                ready |= 1 << i
        return ready

    def drain_clients(self):
        """Serve every message already waiting on the ROUTER (up to ``max_batch``)."""
        if self.items == NULL:
            raise RuntimeError("ClientPump: not set up (use client_pump)")
        return self.drain()

    cdef int drain(self) except -1:
        cdef int n = 0
        cdef int rc
        while n < self.max_batch:
            rc = zmq_msg_recv(&self.m_rid, self.router, ZMQ_DONTWAIT)
            if rc < 0:
                if errno == EAGAIN:
                    break
                if errno == EINTR:  # not blocking: just ask again
                    continue
                raise zmq.ZMQError(errno)
            n += 1
            self.n_messages += 1
            if not zmq_msg_more(&self.m_rid):  # a ROUTER always adds the routing id
                self.counters["bad_envelopes"] += 1
                continue
            # the parts of one message arrive together: the body is there
            rc = zmq_msg_recv(&self.m_body, self.router, ZMQ_DONTWAIT)
            if rc < 0:
                raise zmq.ZMQError(errno)
            if zmq_msg_more(&self.m_body):
                while zmq_msg_more(&self.m_body):
                    if zmq_msg_recv(&self.m_body, self.router, ZMQ_DONTWAIT) < 0:
                        raise zmq.ZMQError(errno)
                self.counters["bad_envelopes"] += 1
                continue
            try:
                self._handle_message()
            finally:
                # release the frame's buffer now, not at the next message
                zmq_msg_close(&self.m_body)
                zmq_msg_init(&self.m_body)
        return n

    # ------------------------------------------------------------------------- one message
    cdef object _session(self, int64_t now):
        cdef const char* rid = <const char*>zmq_msg_data(&self.m_rid)
        cdef Py_ssize_t n_rid = <Py_ssize_t>zmq_msg_size(&self.m_rid)
        cdef const char* user = NULL
        cdef PyObject* cur
        if self.secure:
            user = zmq_msg_gets(&self.m_body, b"User-Id")
        if self.last_session is not None and n_rid == PyBytes_GET_SIZE(self.last_routing_id) and (
                memcmp(rid, PyBytes_AS_STRING(self.last_routing_id), n_rid) == 0):
            # still the session the server keeps for this routing id?
            cur = PyDict_GetItem(self.sessions, self.last_routing_id)
            if cur != NULL and <object>cur is self.last_session:
                if not self.secure:
                    return self.last_session
                # same authenticated name, and that name still registered
                if user != NULL and strcmp(user, PyBytes_AS_STRING(self.last_user)) == 0 and (
                        self.registry.by_name(self.last_name) is not None):
                    return self.last_session
        self.n_session_lookups += 1
        self.last_session = None
        rid_b = PyBytes_FromStringAndSize(rid, n_rid)
        user_s = None
        if self.secure:
            user_s = user[:strlen(user)].decode("utf-8", "replace") if user != NULL else ""
        s = self.engine._session_of(rid_b, user_s, now)
        if s is not None:
            self.last_session = s
            self.last_routing_id = rid_b
            self.last_name = s.name
            self.last_user = s.name.encode("utf-8")
        return s

    cdef int _handle_message(self) except -1:
        cdef int64_t now = _now()
        cdef EngineLoop loop = self.loop
        s = self._session(now)
        if s is None:
            return 0
        s.last_seen_ns = now
        self.engine._cur = s
        loop.c_begin(s.role, s.allowed, s.mask, not self.secure)
        if s.role == ROLE_PUBLISHER:
            loop.cur_strategies = s.strategies
        loop.c_set_sender(s.audit_name)
        loop.c_client_frame(<const uint8_t*>zmq_msg_data(&self.m_body),
                            <Py_ssize_t>zmq_msg_size(&self.m_body), now)
        if loop.cur_mask is not s.mask:  # a HELLO gave the session a new subscription
            s.mask = loop.cur_mask
        self._flush()
        return 0

    # ------------------------------------------------------------------------- sending
    cdef int _send_reply(self, const char* data, Py_ssize_t n) except -1:
        # (routing id, frame) to the sender; a ROUTER drops what it cannot route
        if zmq_send(self.router, PyBytes_AS_STRING(self.last_routing_id), PyBytes_GET_SIZE(self.last_routing_id),
                    ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0:
            self.counters["client_dropped"] += 1
            return 0
        if zmq_send(self.router, data, n, ZMQ_DONTWAIT) < 0:
            self.counters["client_dropped"] += 1
        return 0

    cdef int _send_gateway(self, Py_ssize_t ex, const char* data, Py_ssize_t n) except -1:
        pending = self.gw_pending[ex]
        if pending:  # keep the order behind what already waits
            pending.append(PyBytes_FromStringAndSize(data, n))
            return 0
        if zmq_send(self.gw[ex], data, n, ZMQ_DONTWAIT) < 0:
            if errno != EAGAIN:
                raise zmq.ZMQError(errno)
            pending.append(PyBytes_FromStringAndSize(data, n))
            self.counters["gateway_queued"] += 1
        return 0

    cdef int _flush(self) except -1:
        # journal first, then: per-client signal answers, the reply, the gateways, the writer,
        # the other sessions (the order of Engine._flush)
        cdef EngineLoop loop = self.loop
        cdef OutBuf b
        cdef Py_ssize_t start, ex
        cdef uint32_t i
        loop.c_commit()
        if PyList_GET_SIZE(self.answers):
            joined = b"".join(self.answers)
            self._send_reply(PyBytes_AS_STRING(joined), PyBytes_GET_SIZE(joined))
            del self.answers[:]
        b = loop.reply
        if b.n:
            start = 0
            for i in range(b.n_ends):
                self._send_reply(<const char*>b.data + start, b.ends[i] - start)
                start = b.ends[i]
            if b.n > start:
                self._send_reply(<const char*>b.data + start, b.n - start)
        for ex in range(self.n_gw):
            b = <OutBuf>loop.gw[ex]
            if not b.n:
                continue
            if self.gw[ex] == NULL:
                self.counters["gateway_queued"] += _n_frames(b)
                continue
            start = 0
            for i in range(b.n_ends):
                self._send_gateway(ex, <const char*>b.data + start, b.ends[i] - start)
                start = b.ends[i]
            if b.n > start:
                self._send_gateway(ex, <const char*>b.data + start, b.n - start)
        if self.writer != NULL and loop.wr.n:
            self._queue_writer(loop.wr, _now())
        if loop.n_routed and PyDict_Size(self.sessions) > 1:
            self.engine._route_to_others(self.last_routing_id)
        return 0

    cdef int _queue_writer(self, OutBuf b, int64_t now) except -1:
        # records are self-delimiting (header length), so frames can be joined at any record
        # boundary; a batch larger than the buffer goes out in frames of whole records
        cdef Py_ssize_t off = 0, take
        cdef const uint8_t* rec
        if self.w_n == 0:
            self.w_first_ns = now
        while off < b.n:
            take = b.n - off
            if take > self.w_max - self.w_n:
                take = _whole_records(b.data + off, self.w_max - self.w_n)
                if take == 0:  # the next record does not fit (one always fits when empty)
                    self._send_writer()
                    self.w_first_ns = now
                    continue
            rec = b.data + off
            memcpy(self.w_buf + self.w_n, rec, take)
            self.w_n += take
            off += take
            if self.w_n >= self.w_max:
                self._send_writer()
                self.w_first_ns = now
        if self.w_n and (self.w_delay_ns == 0 or now - self.w_first_ns >= self.w_delay_ns):
            self._send_writer()
        return 0

    cdef int _send_frame(self, const uint8_t* data, Py_ssize_t n) except -1:
        if zmq_send(self.writer, <const char*>data, n, ZMQ_DONTWAIT) < 0:
            if errno != EAGAIN:
                raise zmq.ZMQError(errno)
            self.counters["writer_dropped"] += 1  # the writer refills gaps from the journal
        else:
            self.n_writer_frames += 1
        return 0

    cdef int _send_writer(self) except -1:
        cdef Py_ssize_t n = self.w_n
        self.w_n = 0
        if n:
            self._send_frame(self.w_buf, n)
        return 0

    def queue_writer(self):
        """Take the loop's writer records (the server's own flushes use this too, so every
        writer record leaves through one queue, in sequence order)."""
        if self.writer != NULL and self.loop.wr.n:
            self._queue_writer(self.loop.wr, _now())

    def flush_writer(self):
        """Send the pending writer records now (shutdown)."""
        if self.writer != NULL:
            self._send_writer()


def bare_echo(sock, bytes reply):
    """Benchmark baseline: a ROUTER that answers every message with ``reply``, in C.

    Blocks (GIL released) until a message ``b"stop"`` arrives. libzmq calls only, no Python
    per message: the least a ROUTER round trip can cost from this process.
    """
    cdef void* s = _handle(sock)
    cdef zmq_msg_t rid, body
    cdef const char* rp = PyBytes_AS_STRING(reply)
    cdef size_t rn = <size_t>PyBytes_GET_SIZE(reply)
    cdef int rc = 0
    cdef uint64_t n = 0
    zmq_msg_init(&rid)
    zmq_msg_init(&body)
    with nogil:
        while True:
            if zmq_msg_recv(&rid, s, 0) < 0:
                if errno == EINTR:
                    continue
                rc = -1
                break
            if zmq_msg_recv(&body, s, 0) < 0:
                rc = -1
                break
            if zmq_msg_size(&body) == 4 and memcmp(zmq_msg_data(&body), b"stop", 4) == 0:
                break
            zmq_send(s, zmq_msg_data(&rid), zmq_msg_size(&rid), ZMQ_SNDMORE)
            zmq_send(s, rp, rn, 0)
            n += 1
    zmq_msg_close(&rid)
    zmq_msg_close(&body)
    if rc < 0:
        raise zmq.ZMQError(errno)
    return n
