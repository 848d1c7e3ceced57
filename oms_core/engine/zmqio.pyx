"""The engine's ZeroMQ sink over libzmq (see zmqio.pxd): poll, receive, handle, send."""

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

from bindings.wire.wire cimport OMS_MSG_SIGNAL
from oms_core.engine.idset cimport IdSet
from oms_core.engine.loop cimport (
    ROLE_ADMIN, ROLE_GATEWAY, ROLE_PUBLISHER, EngineLoop, OutBuf,
)

import logging

import zmq

from bindings.security import Role
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, AUDIT_INSECURE, HeaderFlag, MsgType
from oms_core.engine.entry import apply_internal, audit_name
from oms_core.engine.idset import EVERY, NOBODY

log = logging.getLogger("oms.engine")

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

cdef bytes _INSECURE = AUDIT_INSECURE.encode()
cdef int _ROLE_GATEWAY = int(Role.GATEWAY)
cdef int _ROLE_PUBLISHER = int(Role.PUBLISHER)
cdef int _ROLE_ADMIN = int(Role.ADMIN)


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


cdef inline bint _signals_only(const uint8_t* data, Py_ssize_t n) noexcept:
    # a signal frame holds SIGNAL records only, back to back, and nothing else
    cdef Py_ssize_t off = 0
    cdef uint16_t mt, length
    if n < 24:
        return False
    while off + 8 <= n:
        mt = (<const uint16_t*>(data + off + 4))[0]
        length = (<const uint16_t*>(data + off + 6))[0]
        if mt != OMS_MSG_SIGNAL or length == 0:
            return False
        off += length
    return off == n


def rows_of_sender(ident, bytes frame):
    """Every reconciliation answer row of a gateway frame is of the sender's venue accounts
    (checked here: the rows bypass the loop, which checks the other records). A malformed
    frame passes: the loop counts it."""
    if wire.check_frame_py(frame)[1] != 0:
        return True
    return all(getattr(r, "account", None) in ident.accounts for r in wire.decode_frame(frame)
               if r.flags & HeaderFlag.QUERY_ROW or r.msg_type in (
                   MsgType.GW_BALANCE, MsgType.GW_RECONCILE_END))


cdef class SessionPolicy:
    """The session table's hooks the sink calls (see zmqio.pxd); subclassed in Python."""

    def __init__(self):
        self.by_routing_id = {}
        self.current = None

    cpdef object session_of(self, bytes rid, object user, int64_t now):
        """The session of ``rid`` (``user``: its User-Id, security on); None: refused."""
        raise NotImplementedError

    cpdef tuple hello(self, int kind, bytes payload):
        """A HELLO of ``current``: (reject code or 0, its new subscription or None)."""
        raise NotImplementedError

    cpdef list expire(self, int64_t now):
        """End the silent sessions: [(session, accounts to cancel)]."""
        raise NotImplementedError

    cpdef list heartbeat_due(self, int64_t now):
        """Routing ids of the sessions due a heartbeat at ``now``."""
        raise NotImplementedError


cdef class EngineSink:
    """Serve every engine socket without pyzmq per message (see zmqio.pxd).

    Parameters
    ----------
    loop : EngineLoop
    sessions : SessionTable
        The client sessions and their policy (the sink owns it from here on).
    router, pub, writer, gateway_events, market_data, signals : zmq.Socket or None
        The engine's sockets (bound or connected by the engine); only ``router`` is needed.
    gateway_orders : dict
        Exchange id -> its PUSH socket.
    registry : KeyRegistry or None
        Security on: the identities behind each message's User-Id.
    counters : dict
        The engine's counters (updated in place).
    answers : list
        Where the cold commands put a SIGNAL's per-client answers.
    writer_delay_us : int
        Longest a writer record waits in the sink (0: sent at every flush).

    Used only from the engine loop's thread, and only while its sockets are open.
    """

    def __cinit__(self):
        self.max_batch = 256
        self.w_max = WRITER_FRAME_BYTES
        self.w_buf = <uint8_t*>PyMem_Malloc(self.w_max)
        if self.w_buf == NULL:
            raise MemoryError("EngineSink: allocation failed")
        zmq_msg_init(&self.m_rid)
        zmq_msg_init(&self.m_body)

    def __dealloc__(self):
        zmq_msg_close(&self.m_rid)
        zmq_msg_close(&self.m_body)
        PyMem_Free(self.poll_sockets)
        PyMem_Free(self.poll_kinds)
        PyMem_Free(self.pfds)
        PyMem_Free(self.gw)
        PyMem_Free(self.w_buf)

    def __init__(self, EngineLoop loop not None, SessionPolicy sessions not None,
                 router not None, *,
                 pub=None, writer=None, gateway_events=None, market_data=None, signals=None,
                 dict gateway_orders=None, registry=None, dict counters=None,
                 list answers=None, int64_t writer_delay_us=WRITER_DELAY_US):
        cdef Py_ssize_t i
        cdef int k
        if self.poll_sockets != NULL:
            raise RuntimeError("EngineSink: already set up")
        self.loop = loop
        self.sessions = sessions
        self.by_routing_id = sessions.by_routing_id
        self.registry = registry
        self.secure = registry is not None
        self.counters = counters if counters is not None else {}
        for key in ("writer_dropped", "client_dropped", "gateway_queued", "bad_envelopes",
                    "pub_dropped", "refused_gateway_frames", "refused_signal_frames",
                    "bad_signal_frames", "refused_unknown_key", "sessions_expired"):
            self.counters.setdefault(key, 0)
        self.answers = answers if answers is not None else []
        self.peer_sets = {}
        self.w_delay_ns = writer_delay_us * 1000
        polled = [(router, SOCKET_CLIENTS)] + [
            (s, kind) for s, kind in ((gateway_events, SOCKET_GATEWAY_EVENTS),
                                      (market_data, SOCKET_MARKET_DATA),
                                      (signals, SOCKET_SIGNALS)) if s is not None]
        self.n_items = len(polled)
        self.poll_sockets = <void**>PyMem_Malloc(self.n_items * sizeof(void*))
        self.poll_kinds = <int*>PyMem_Malloc(self.n_items * sizeof(int))
        self.pfds = <pollfd*>PyMem_Malloc(self.n_items * sizeof(pollfd))
        self.n_gw = len(loop.gw)
        self.gw = <void**>PyMem_Malloc((self.n_gw if self.n_gw else 1) * sizeof(void*))
        if (self.poll_sockets == NULL or self.poll_kinds == NULL or self.pfds == NULL
                or self.gw == NULL):
            raise MemoryError("EngineSink: allocation failed")
        memset(self.pfds, 0, self.n_items * sizeof(pollfd))
        self.socks = []
        for i, (sock, k) in enumerate(polled):
            self.socks.append(sock)
            self.poll_sockets[i] = _handle(sock)
            self.poll_kinds[i] = k
            self.pfds[i].fd = sock.getsockopt(zmq.FD)
            self.pfds[i].events = POLLIN
        self.router = self.poll_sockets[0]
        self.pub = NULL
        if pub is not None:
            self.pub = _handle(pub)
            self.socks.append(pub)
        self.writer = NULL
        if writer is not None:
            self.writer = _handle(writer)
            self.socks.append(writer)
        self.gw_pending = []
        gateway_orders = gateway_orders or {}
        for i in range(self.n_gw):
            s = gateway_orders.get(i)
            self.gw[i] = _handle(s) if s is not None else NULL
            if s is not None:
                self.socks.append(s)
            self.gw_pending.append([] if s is not None else None)
        loop.py_command = self._hello

    # ------------------------------------------------------------------------- wake-ups
    def serve(self, int64_t deadline_ns):
        """Serve every socket until ``deadline_ns`` (time.time_ns clock) or a stop.

        Signals interrupt the wait; their Python handlers run here.
        """
        cdef int ready, rc, i
        cdef int64_t now, wait
        if self.poll_sockets == NULL:
            raise RuntimeError("EngineSink: not set up")
        # Python ran since the last call (its sends and receives may have taken a socket's
        # wake-up signal): ask every socket once
        ready = self._events(0, self.n_items)
        while True:
            for i in range(self.n_items):
                if ready >> i & 1:
                    self._drain(i)  # up to max_batch: the others and the timers get a turn
            # libzmq's ZMQ_FD is edge-triggered and a send processes that socket's commands:
            # a reply or a routed event sent on the ROUTER while another socket was handled
            # can take its wake-up, so every socket is asked again before the wait
            ready = self._events(0, self.n_items) if ready else 0
            PyErr_CheckSignals()
            if self.stopping:
                return
            now = _now()
            if self.w_n and now - self.w_first_ns >= self.w_delay_ns:
                self._send_writer()
            if now >= deadline_ns:
                return
            if ready:
                continue
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

    def drain_all(self):
        """Take what already waits on every socket (up to ``max_batch`` each); return how
        many messages were taken (shutdown: answer what arrived)."""
        cdef int i, n = 0
        if self.poll_sockets == NULL:
            raise RuntimeError("EngineSink: not set up")
        for i in range(self.n_items):
            n += self._drain(i)
        return n

    cdef int _events(self, int lo, int hi) except -1:
        # bit i: socket i (lo <= i < hi) has a message to read
        cdef int i, ev
        cdef size_t size
        cdef int ready = 0
        for i in range(lo, hi):
            ev = 0
            size = sizeof(int)
            if zmq_getsockopt(self.poll_sockets[i], ZMQ_EVENTS, &ev, &size) < 0:
                raise zmq.ZMQError(errno)
            if ev & ZMQ_POLLIN:
                ready |= 1 << i
        return ready

    cdef int _drain(self, int i) except -1:
        cdef int kind = self.poll_kinds[i]
        if kind == SOCKET_CLIENTS:
            return self._drain_clients()
        if kind == SOCKET_SIGNALS:
            return self._drain_signals(self.poll_sockets[i])
        return self._drain_gateway(self.poll_sockets[i], kind == SOCKET_MARKET_DATA)

    # ------------------------------------------------------------------------- clients
    cdef int _drain_clients(self) except -1:
        cdef int n = 0
        cdef int rc
        self.n_wakeups += 1
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

    cdef object _session(self, int64_t now):
        cdef const char* rid = <const char*>zmq_msg_data(&self.m_rid)
        cdef Py_ssize_t n_rid = <Py_ssize_t>zmq_msg_size(&self.m_rid)
        cdef const char* user = NULL
        cdef PyObject* cur
        if self.secure:
            user = zmq_msg_gets(&self.m_body, b"User-Id")
        if self.last_session is not None and n_rid == PyBytes_GET_SIZE(self.last_routing_id) and (
                memcmp(rid, PyBytes_AS_STRING(self.last_routing_id), n_rid) == 0):
            # still the session the table keeps for this routing id?
            cur = PyDict_GetItem(self.by_routing_id, self.last_routing_id)
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
        s = self.sessions.session_of(rid_b, user_s, now)
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
        self.sessions.current = s
        self.reply_to = self.last_routing_id
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

    def _hello(self, int kind, bytes payload):
        # the loop's HELLO hook: the session table's policy, the subscription into the batch
        code, mask = self.sessions.hello(kind, payload)
        if mask is not None:
            self.loop.cur_mask = mask
        return code

    # ------------------------------------------------------------------------- gateways
    cdef object _sender(self, zmq_msg_t* msg):
        # the registered identity behind a message's User-Id (security on); None: unknown
        cdef const char* user = zmq_msg_gets(msg, b"User-Id")
        if user == NULL or user[0] == 0:
            return None
        return self.registry.by_name(user[:strlen(user)].decode("utf-8", "replace"))

    cdef IdSet _peer_set(self, object ident, object ids):
        # the IdSet of a peer's accounts or strategies, made once per identity (a gateway's
        # or a publisher's frames come often; an identity is immutable)
        key = (ident, ids)
        got = self.peer_sets.get(key)
        if got is None:
            got = self.peer_sets[key] = IdSet(ids, frozen=True)
        return <IdSet>got

    cdef int _begin_gateway(self, object ident) except -1:
        # a loop batch for a gateway frame: as the sending gateway (its accounts, its
        # exchange) when security is on, else as the trusted link it is then
        self.gateway_sender = ident
        self.sessions.current = None
        self.reply_to = None
        if ident is None:
            self.loop.c_begin(ROLE_ADMIN, EVERY, NOBODY, False)
            return 0
        self.loop.c_begin(ROLE_GATEWAY, self._peer_set(ident, ident.accounts), NOBODY, False)
        self.loop.cur_exchange = ident.exchange
        return 0

    cdef int _drain_gateway(self, void* sock, bint market_data) except -1:
        cdef int n = 0
        cdef const uint8_t* data
        cdef Py_ssize_t size
        ident = None
        while n < self.max_batch:
            if zmq_msg_recv(&self.m_body, sock, ZMQ_DONTWAIT) < 0:
                if errno == EAGAIN:
                    break
                if errno == EINTR:
                    continue
                raise zmq.ZMQError(errno)
            n += 1
            self.n_gateway_frames += 1
            try:
                if self.secure:
                    ident = self._sender(&self.m_body)
                    if ident is None or ident.role != _ROLE_GATEWAY:
                        self.counters["refused_gateway_frames"] += 1
                        continue
                data = <const uint8_t*>zmq_msg_data(&self.m_body)
                size = <Py_ssize_t>zmq_msg_size(&self.m_body)
                self.gateway_sender = ident
                rc = self.reconciler
                if not market_data and rc is not None and rc.active:
                    frame = PyBytes_FromStringAndSize(<const char*>data, size)
                    if self.secure and not rows_of_sender(ident, frame):
                        self.counters["refused_gateway_frames"] += 1
                        continue
                    if rc.on_frame(frame):
                        continue  # a reconciliation answer row
                self._begin_gateway(ident)
                self.loop.c_gateway_frame(data, size, _now())
                self._flush()
                if market_data:  # market data summary for everyone
                    self._publish(<const char*>data, size)
            finally:
                zmq_msg_close(&self.m_body)
                zmq_msg_init(&self.m_body)
        return n

    def apply_gateway_frame(self, frame):
        """Apply records of the gateway frame being handled that the reconciler passes on,
        as the gateway that sent that frame."""
        cdef const uint8_t[::1] view = frame
        self._begin_gateway(self.gateway_sender)
        self.loop.c_gateway_frame(&view[0] if view.shape[0] else NULL, view.shape[0], _now())
        self._flush()

    def retry_gateways(self):
        """Send again the gateway orders their PUSH refused, in order, until one is refused."""
        cdef Py_ssize_t ex
        cdef bytes f
        cdef list pending
        for ex in range(self.n_gw):
            pending = self.gw_pending[ex]
            while pending:
                f = pending[0]
                if zmq_send(self.gw[ex], PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f),
                            ZMQ_DONTWAIT) < 0:
                    if errno != EAGAIN:
                        raise zmq.ZMQError(errno)
                    break
                del pending[0]

    # ------------------------------------------------------------------------- signals
    cdef int _drain_signals(self, void* sock) except -1:
        # signals published to every shard: frames of SIGNAL records only (anything else in
        # a frame refuses the whole frame); the answers go to the journal and the writer
        cdef int n = 0
        cdef const uint8_t* data
        cdef Py_ssize_t size
        cdef EngineLoop loop = self.loop
        ident = None
        while n < self.max_batch:
            if zmq_msg_recv(&self.m_body, sock, ZMQ_DONTWAIT) < 0:
                if errno == EAGAIN:
                    break
                if errno == EINTR:
                    continue
                raise zmq.ZMQError(errno)
            n += 1
            self.n_signal_frames += 1
            try:
                if self.secure:
                    ident = self._sender(&self.m_body)
                    if ident is None or ident.role not in (_ROLE_PUBLISHER, _ROLE_ADMIN):
                        self.counters["refused_signal_frames"] += 1
                        continue
                data = <const uint8_t*>zmq_msg_data(&self.m_body)
                size = <Py_ssize_t>zmq_msg_size(&self.m_body)
                if not _signals_only(data, size):
                    self.counters["bad_signal_frames"] += 1
                    continue
                self.sessions.current = None
                self.reply_to = None
                if ident is None:
                    loop.c_begin(ROLE_ADMIN, EVERY, NOBODY, False)
                    loop.c_set_sender(_INSECURE)
                else:  # a publisher: its strategies only (each record is checked)
                    loop.c_begin(ROLE_PUBLISHER, EVERY, NOBODY, False)
                    if ident.role == _ROLE_PUBLISHER:
                        loop.cur_strategies = self._peer_set(ident, ident.strategies)
                    loop.c_set_sender(audit_name(ident.name))
                loop.c_client_frame(data, size, _now())
                self._flush()
            finally:
                zmq_msg_close(&self.m_body)
                zmq_msg_init(&self.m_body)
        return n

    # ------------------------------------------------------------------------- internal
    def apply_internal(self, int kind, int64_t now, bytes payload=b"", bint audited=False):
        """Apply one input the engine gives itself (timer, mark-to-market, start of day,
        cancel on disconnect, reconciliation) through the loop's live path and this flush;
        ``audited``: in the audit trail as AUDIT_ENGINE's command."""
        # may come while a frame is handled (a gateway status in doubt): its sender and reply
        # target are the outer frame's again afterwards
        cdef bytes outer_reply_to = self.reply_to
        outer_current = self.sessions.current
        apply_internal(self.loop, kind, now, payload, audited)
        self.sessions.current = None
        self.reply_to = None
        try:
            self._flush()
        finally:
            self.reply_to = outer_reply_to
            self.sessions.current = outer_current

    def expire_sessions(self, int64_t now):
        """End the silent sessions; cancel the open orders of the accounts a silent client
        armed (HELLO) and no live session follows (cancel on disconnect)."""
        for s, accounts in self.sessions.expire(now):
            for account in accounts:
                log.warning("client %r silent: canceling the open orders of account %d",
                            s.name, account)
                rec = wire.encode("MASS_CANCEL", 0, 0, now, 0, account=account,
                                  strategy=ANY_ID, instrument=ANY_ID, side=0)
                self.apply_internal(int(MsgType.MASS_CANCEL), now, rec, True)
                self.counters["cod_mass_cancels"] = self.counters.get("cod_mass_cancels", 0) + 1

    def heartbeats(self, int64_t now, bytes heartbeat):
        """Send ``heartbeat`` on the PUB and to every session due one at ``now``."""
        cdef bytes rid
        self._publish(PyBytes_AS_STRING(heartbeat), PyBytes_GET_SIZE(heartbeat))
        for rid in self.sessions.heartbeat_due(now):
            self._send_to(rid, PyBytes_AS_STRING(heartbeat), PyBytes_GET_SIZE(heartbeat))

    def publish(self, bytes record):
        """Send ``record`` on the event PUB (gateway status, cold answers)."""
        if self.pub != NULL:
            self._publish(PyBytes_AS_STRING(record), PyBytes_GET_SIZE(record))

    # ------------------------------------------------------------------------- sending
    cdef int _send_to(self, bytes rid, const char* data, Py_ssize_t n) except -1:
        # (routing id, frame) to one session; a ROUTER drops what it cannot route
        if zmq_send(self.router, PyBytes_AS_STRING(rid), PyBytes_GET_SIZE(rid),
                    ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0:
            self.counters["client_dropped"] += 1
            return 0
        if zmq_send(self.router, data, n, ZMQ_DONTWAIT) < 0:
            self.counters["client_dropped"] += 1
        return 0

    cdef int _publish(self, const char* data, Py_ssize_t n) except -1:
        if self.pub != NULL and zmq_send(self.pub, data, n, ZMQ_DONTWAIT) < 0:
            self.counters["pub_dropped"] += 1
        return 0

    cdef int _send_gateway(self, Py_ssize_t ex, const char* data, Py_ssize_t n) except -1:
        cdef list pending = self.gw_pending[ex]
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
        # the other sessions
        cdef EngineLoop loop = self.loop
        cdef OutBuf b
        cdef Py_ssize_t start, ex
        cdef uint32_t i
        loop.c_commit()
        if PyList_GET_SIZE(self.answers):
            if self.reply_to is not None:
                joined = b"".join(self.answers)
                self._send_to(self.reply_to, PyBytes_AS_STRING(joined), PyBytes_GET_SIZE(joined))
            del self.answers[:]
        b = loop.reply
        if b.n and self.reply_to is not None:
            start = 0
            for i in range(b.n_ends):
                self._send_to(self.reply_to, <const char*>b.data + start, b.ends[i] - start)
                start = b.ends[i]
            if b.n > start:
                self._send_to(self.reply_to, <const char*>b.data + start, b.n - start)
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
        if loop.n_routed and PyDict_Size(self.by_routing_id) > (self.reply_to is not None):
            self._route_to_others()
        return 0

    cdef int _route_to_others(self) except -1:
        # this batch's events to the other sessions following their accounts
        cdef EngineLoop loop = self.loop
        cdef bytes f
        for srid, s in self.by_routing_id.items():
            if srid == self.reply_to or not loop.routes_to(s.mask):
                continue
            for f in loop.select(s.mask):
                self._send_to(srid, PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
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
