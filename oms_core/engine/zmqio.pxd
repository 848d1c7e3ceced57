# EngineSink: the engine's ZeroMQ sink, compiled, calling libzmq directly.
#
# ``serve(deadline)`` runs the engine loop in C until the next timer is due: it waits with
# poll(2) on every engine socket's ZMQ_FD (the client ROUTER, the gateway events PULL, the
# gateway market-data SUB, the signal SUB), asks ZMQ_EVENTS only of a socket whose FD fired,
# takes the messages already waiting with zmq_msg_recv(ZMQ_DONTWAIT) (up to ``max_batch``
# per socket and wake-up), hands each to the EngineLoop without a Python object per message,
# and sends what the loop answers with zmq_send straight from its output buffers: the reply
# to the sender, GW_* records to the gateways, every record to the writer, events to the
# other sessions following their accounts, market data republished on the PUB.
#
# The sink owns the session table (oms_core/engine/sessions.py SessionTable, a SessionPolicy):
# it looks the sender up, makes a session on first sight and answers HELLO through that
# table's typed hooks; it never calls the Engine. Internal inputs (timer, mark-to-market, start of day, cancel on
# disconnect, reconciliation) go through ``apply_internal`` and the same flush.
#
# libzmq is the one pyzmq loaded (bindings/libzmq.py shares it before this module loads);
# its declarations are pyzmq's libzmq.pxd.

from libc.stdint cimport int64_t, uint8_t, uint64_t

from zmq.backend.cython.libzmq cimport zmq_msg_t

from oms_core.engine.idset cimport IdSet
from oms_core.engine.loop cimport EngineLoop, OutBuf

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents

# what each polled socket carries
cdef enum:
    SOCKET_CLIENTS = 0
    SOCKET_GATEWAY_EVENTS = 1
    SOCKET_MARKET_DATA = 2
    SOCKET_SIGNALS = 3


cdef class SessionPolicy:
    """What the sink asks of its session table (implemented by
    oms_core/engine/sessions.py SessionTable); cold: called on a new sender, a HELLO, the
    timer."""
    cdef public dict by_routing_id
    """Routing id -> Session."""
    cdef public object current
    """The session whose frame is being handled (None: an input with no client)."""
    cpdef object session_of(self, bytes rid, object user, int64_t now)
    cpdef tuple hello(self, int kind, bytes payload)
    cpdef list expire(self, int64_t now)
    cpdef list heartbeat_due(self, int64_t now)


cdef class EngineSink:
    cdef EngineLoop loop
    cdef readonly SessionPolicy sessions
    """The session table: routing id -> Session, and its policy."""
    cdef dict by_routing_id
    """``sessions.by_routing_id``, read here per message."""
    cdef list socks
    """The pyzmq sockets used (keeps their handles alive)."""
    cdef void** poll_sockets
    """Per polled socket: its libzmq handle."""
    cdef int* poll_kinds
    """Per polled socket: SOCKET_*."""
    cdef pollfd* pfds
    cdef int n_items
    cdef void* router
    cdef void* pub
    """The event PUB, or NULL."""
    cdef void* writer
    """The writer PUSH, or NULL."""
    cdef uint8_t* w_buf
    """Writer records not sent yet (already journaled): sent as one frame when ``w_max``
    bytes are pending or ``w_delay_ns`` after the first of them, so the engine wakes its
    I/O thread (and the writer) a few hundred times a second, not once per message."""
    cdef Py_ssize_t w_n
    cdef Py_ssize_t w_max
    cdef int64_t w_first_ns
    cdef public int64_t w_delay_ns
    """Longest a writer record waits in the engine (0: every flush sends)."""
    cdef readonly uint64_t n_writer_frames
    cdef void** gw
    """Gateway PUSH per exchange id (NULL: no gateway), ``n_gw`` of them."""
    cdef Py_ssize_t n_gw
    cdef readonly list gw_pending
    """Per exchange id: the orders its PUSH refused (EAGAIN), sent again by ``retry_gateways``;
    None: no gateway."""
    cdef dict counters
    cdef list answers
    """Per-client answers of a SIGNAL (made by the cold commands), sent ahead of the reply."""
    cdef object registry
    cdef bint secure
    cdef public bint stopping
    """Set by the engine's stop: ``serve`` returns."""
    cdef public object reconciler
    """The Reconciler while it may be asking (its answer rows bypass the loop), or None."""
    cdef readonly object gateway_sender
    """The identity of the gateway whose frame is being handled (security on), or None."""
    cdef dict peer_sets
    # the last client sender: used without touching the session dict while it stays valid
    cdef object last_session
    cdef bytes last_routing_id
    cdef bytes last_user
    cdef object last_name
    cdef bytes reply_to
    """Routing id the current batch's reply goes to (None: an input with no client)."""
    cdef zmq_msg_t m_rid
    cdef zmq_msg_t m_body
    cdef public int max_batch
    """Most messages taken from one socket per wake-up before the others get a turn."""
    cdef readonly uint64_t n_messages
    """Client messages taken by the sink."""
    cdef readonly uint64_t n_gateway_frames
    """Gateway frames (reports, market data, status) taken by the sink."""
    cdef readonly uint64_t n_signal_frames
    cdef readonly uint64_t n_wakeups
    """Wake-ups that found the ROUTER readable."""
    cdef readonly uint64_t n_session_lookups
    """Messages whose sender was not the cached one (a Python session lookup)."""

    cdef int _events(self, int lo, int hi) except -1
    cdef int _drain(self, int i) except -1
    cdef int _drain_clients(self) except -1
    cdef int _drain_gateway(self, void* sock, bint market_data) except -1
    cdef int _drain_signals(self, void* sock) except -1
    cdef int _handle_message(self) except -1
    cdef object _session(self, int64_t now)
    cdef object _sender(self, zmq_msg_t* msg)
    cdef IdSet _peer_set(self, object ident, object ids)
    cdef int _begin_gateway(self, object ident) except -1
    cdef int _flush(self) except -1
    cdef int _route_to_others(self) except -1
    cdef int _send_to(self, bytes rid, const char* data, Py_ssize_t n) except -1
    cdef int _send_gateway(self, Py_ssize_t ex, const char* data, Py_ssize_t n) except -1
    cdef int _publish(self, const char* data, Py_ssize_t n) except -1
    cdef int _queue_writer(self, OutBuf b, int64_t now) except -1
    cdef int _send_frame(self, const uint8_t* data, Py_ssize_t n) except -1
    cdef int _send_writer(self) except -1
