# ClientPump: the engine's per-message client path, compiled, calling libzmq directly.
#
# ``serve(deadline)`` runs the engine loop in C until the next timer is due or another
# input (gateway PULL / SUB, signal SUB) is readable: it waits with poll(2) on the sockets'
# ZMQ_FDs, asks ZMQ_EVENTS only of a socket whose FD fired, takes every message already
# waiting on the ROUTER with zmq_msg_recv(ZMQ_DONTWAIT) (up to ``max_batch``, until EAGAIN),
# hands it to the EngineLoop without a Python object per message, and sends its answers
# with zmq_send straight from the loop's output buffers: the reply to the sender, GW_*
# records to the gateways, every record to the writer. The other ready sockets are
# returned to Python (oms_core/engine/server.py), which also keeps the sessions and the
# timers: the pump asks it for a session only when the sender is not the one it saw last,
# and calls back into it for the rare cases (events for other sessions, gateway retry
# queues, per-client signal answers).
#
# libzmq is the one pyzmq loaded (bindings/libzmq.py shares it before this module loads);
# its declarations are pyzmq's libzmq.pxd.

from libc.stdint cimport int64_t, uint8_t, uint64_t

from oms_core.engine.loop cimport EngineLoop, OutBuf


from zmq.backend.cython.libzmq cimport zmq_msg_t, zmq_pollitem_t

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents


# ---------------------------------------------------------------------------------------------
# The pump
# ---------------------------------------------------------------------------------------------

cdef class ClientPump:
    cdef EngineLoop loop
    cdef object engine
    """The server (``oms_core.engine.server.Engine``): sessions, counters, rare cases."""
    cdef list socks
    """The pyzmq sockets polled (index 0: the client ROUTER); keeps their handles alive."""
    cdef zmq_pollitem_t* items
    """Per polled socket: its libzmq handle and its ZMQ_FD."""
    cdef pollfd* pfds
    cdef int n_items
    cdef void* router
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
    cdef list gw_pending
    """Per exchange id: the server's retry deque, or None."""
    cdef dict sessions
    cdef dict counters
    cdef list answers
    cdef object registry
    cdef bint secure
    # the last sender: used without touching the session dict while it stays valid
    cdef object last_session
    cdef bytes last_routing_id
    cdef bytes last_user
    cdef object last_name
    cdef zmq_msg_t m_rid
    cdef zmq_msg_t m_body
    cdef public int max_batch
    """Most ROUTER messages handled per wake-up before the other sockets get a turn."""
    cdef readonly uint64_t n_messages
    """Client messages taken by the pump."""
    cdef readonly uint64_t n_wakeups
    """Wake-ups that found the ROUTER readable."""
    cdef readonly uint64_t n_session_lookups
    """Messages whose sender was not the cached one (a Python session lookup)."""

    cdef int drain(self) except -1
    cdef int _events(self, int lo, int hi) except -1
    cdef int _handle_message(self) except -1
    cdef object _session(self, int64_t now)
    cdef int _flush(self) except -1
    cdef int _send_reply(self, const char* data, Py_ssize_t n) except -1
    cdef int _send_gateway(self, Py_ssize_t ex, const char* data, Py_ssize_t n) except -1
    cdef int _queue_writer(self, OutBuf b, int64_t now) except -1
    cdef int _send_frame(self, const uint8_t* data, Py_ssize_t n) except -1
    cdef int _send_writer(self) except -1
