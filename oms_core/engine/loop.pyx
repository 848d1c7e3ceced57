"""The engine's hot path (see loop.pxd): frames in, core calls, answer and event frames out."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from bindings.wire.codec cimport wire_check_frame
from bindings.wire.wire cimport *
from oms_core.core cimport OmsCore
from oms_core.engine.idset cimport IdSet
from oms_core.heaps cimport HeapSet
from oms_core.journal cimport JournalStage, NullJournal
from oms_core.types cimport *

from oms_core.engine.idset import EVERY, NOBODY

cdef IdSet _NOBODY = NOBODY


cdef class ColdAnswer:
    """See loop.pxd."""

    def __init__(self, int code=0, uint64_t order_id=0, uint64_t leg2_order_id=0,
                 uint64_t leg3_order_id=0, uint64_t client_order_id=0, uint32_t account=0):
        self.code = code
        self.order_id = order_id
        self.leg2_order_id = leg2_order_id
        self.leg3_order_id = leg3_order_id
        self.client_order_id = client_order_id
        self.account = account

    def __iter__(self):
        """Unpack as ``code, order_id, leg2_order_id, leg3_order_id, client_order_id,
        account``."""
        return iter((self.code, self.order_id, self.leg2_order_id, self.leg3_order_id,
                     self.client_order_id, self.account))

    def __repr__(self):
        return (f"ColdAnswer(code={self.code}, order_id={self.order_id}, "
                f"leg2_order_id={self.leg2_order_id}, leg3_order_id={self.leg3_order_id}, "
                f"client_order_id={self.client_order_id}, account={self.account})")

    def __eq__(self, other):
        cdef ColdAnswer o
        if not isinstance(other, ColdAnswer):
            return NotImplemented
        o = <ColdAnswer>other
        return (self.code, self.order_id, self.leg2_order_id, self.leg3_order_id,
                self.client_order_id, self.account) == (
                    o.code, o.order_id, o.leg2_order_id, o.leg3_order_id, o.client_order_id,
                    o.account)


# a cold kind without a handler: a client command of it is rejected, as a bad record
cdef ColdAnswer _NO_HANDLER = ColdAnswer(R_INVALID_FLAGS)
# the kinds c_apply decodes itself: no cold handler may take them
cdef frozenset _COMPILED_KINDS = frozenset((
    OMS_MSG_NEW_ORDER, OMS_MSG_CANCEL, OMS_MSG_REPLACE, OMS_MSG_GW_EXEC_REPORT,
    OMS_MSG_GW_MARKET_DATA, KIND_TIMER, KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_AUDIT))


cdef inline int64_t _now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef inline bint _is_terminal(int status) noexcept nogil:
    return (status == ST_FILLED or status == ST_CANCELED or status == ST_REJECTED
            or status == ST_EXPIRED)


cdef inline void _hdr(void* p, uint16_t msg_type, uint16_t size, uint64_t seq,
                      uint64_t rid, uint8_t flags, int64_t now) noexcept nogil:
    memset(p, 0, size)
    cdef oms_hdr_t* h = <oms_hdr_t*>p
    h.magic = OMS_WIRE_MAGIC
    h.version = OMS_WIRE_VERSION
    h.flags = flags
    h.msg_type = msg_type
    h.length = size
    h.seq = seq
    h.request_id = rid
    h.send_ns = now


cdef IdSet _ids(object ids):
    """``ids`` as an IdSet: one already, or the set bits of an integer (tests and tools)."""
    return ids if isinstance(ids, IdSet) else IdSet.from_mask(ids)


cdef inline void _venue_terms(oms_gw_new_order_t* gn, order_t* o, bint native_stops) noexcept:
    """The order as the venue is to see it: the one engine -> venue conversion.

    Native stops (the instrument's ``native_stops``) keep their type and trigger for the
    venue to hold; a native TRAILING_STOP carries its trail distance as the trigger. Any
    other stop was held and fired by the engine: a STOP_LIMIT goes out as a LIMIT at its
    limit price, the rest as MARKET.
    """
    cdef int t = o.order_type
    gn.order_type = t
    gn.price = o.price
    gn.trigger_price = o.trigger
    if t == TYPE_MARKET or t == TYPE_LIMIT:
        gn.trigger_price = 0
    elif native_stops:
        if t != TYPE_STOP_LIMIT:
            gn.price = 0
        if t == TYPE_TRAILING_STOP:
            gn.trigger_price = o.trail_offset
    elif t == TYPE_STOP_LIMIT:
        gn.order_type = TYPE_LIMIT
        gn.trigger_price = 0
    else:
        gn.order_type = TYPE_MARKET
        gn.price = 0
        gn.trigger_price = 0


# ---------------------------------------------------------------------------------------------
# OutBuf
# ---------------------------------------------------------------------------------------------

cdef class OutBuf:
    """Records packed back to back and cut into wire frames (<= 1 MiB, <= 4096 records)."""

    def __cinit__(self, Py_ssize_t capacity=1 << 16):
        self.cap = capacity if capacity >= 4096 else 4096
        self.data = <uint8_t*>PyMem_Malloc(self.cap)
        self.ends_cap = 16
        self.ends = <Py_ssize_t*>PyMem_Malloc(self.ends_cap * sizeof(Py_ssize_t))
        if self.data == NULL or self.ends == NULL:
            raise MemoryError("OutBuf: allocation failed")

    def __dealloc__(self):
        PyMem_Free(self.data)
        PyMem_Free(self.ends)

    cdef void reset(self) noexcept nogil:
        self.n = 0
        self.frame_start = 0
        self.frame_records = 0
        self.n_ends = 0

    cdef uint8_t* reserve(self, Py_ssize_t size) except NULL:
        cdef Py_ssize_t* ends
        cdef uint8_t* grown
        cdef Py_ssize_t cap
        if (self.n - self.frame_start + size > OMS_WIRE_MAX_FRAME_SIZE
                or self.frame_records >= OMS_WIRE_MAX_RECORDS_PER_FRAME):
            if self.n_ends == self.ends_cap:
                ends = <Py_ssize_t*>PyMem_Realloc(self.ends,
                                                  2 * self.ends_cap * sizeof(Py_ssize_t))
                if ends == NULL:
                    raise MemoryError("OutBuf: cannot grow the frame list")
                self.ends = ends
                self.ends_cap *= 2
            self.ends[self.n_ends] = self.n
            self.n_ends += 1
            self.frame_start = self.n
            self.frame_records = 0
        if self.n + size > self.cap:
            cap = self.cap * 2
            while self.n + size > cap:
                cap *= 2
            grown = <uint8_t*>PyMem_Realloc(self.data, cap)
            if grown == NULL:
                raise MemoryError("OutBuf: cannot grow")
            self.data = grown
            self.cap = cap
        cdef uint8_t* p = self.data + self.n
        self.n += size
        self.frame_records += 1
        self.n_records += 1
        return p

    cdef int append(self, const uint8_t* rec, Py_ssize_t size) except -1:
        memcpy(self.reserve(size), rec, size)
        return 0

    def frames(self):
        """The records written since the last reset, as a list of frames (bytes copies)."""
        cdef list out = []
        cdef Py_ssize_t start = 0
        cdef uint32_t i
        for i in range(self.n_ends):
            out.append(PyBytes_FromStringAndSize(<char*>self.data + start,
                                                 self.ends[i] - start))
            start = self.ends[i]
        if self.n > start:
            out.append(PyBytes_FromStringAndSize(<char*>self.data + start, self.n - start))
        return out

    def clear(self):
        self.reset()

    def add(self, bytes record):
        """Append one whole record (cold path: query rows built in Python)."""
        self.append(<const uint8_t*>PyBytes_AS_STRING(record), PyBytes_GET_SIZE(record))

    @property
    def nbytes(self):
        return self.n


# ---------------------------------------------------------------------------------------------
# EngineLoop
# ---------------------------------------------------------------------------------------------

cdef class EngineLoop:
    """The hot path of the engine around one OmsCore.

    Parameters
    ----------
    core : OmsCore
        The state; the loop is its only caller while the engine runs.
    n_exchanges : int
        Gateways are addressed by the instrument's exchange id below this.
    journal : JournalStage, optional
        Where inputs and events are journaled: an oms_core.journal.Journal, MemoryJournal or
        NullJournal; None is a NullJournal.
    """

    def __cinit__(self, OmsCore core not None, int n_exchanges=16,
                  JournalStage journal=None):
        self.core = core
        self.reply = OutBuf(1 << 20)
        self.wr = OutBuf(1 << 20)
        self.gw = [OutBuf(1 << 16) for _ in range(n_exchanges)]
        self.live = True
        self.route_cap = 1024
        self.route_offsets = <uint32_t*>PyMem_Malloc(self.route_cap * sizeof(uint32_t))
        self.route_lengths = <uint16_t*>PyMem_Malloc(self.route_cap * sizeof(uint16_t))
        self.route_accounts = <uint32_t*>PyMem_Malloc(self.route_cap * sizeof(uint32_t))
        self.wire_errors = <uint64_t*>PyMem_Malloc(16 * sizeof(uint64_t))
        # gateway ids are exchange ids: one slot per exchange
        self.n_gateways = n_exchanges
        self.gw_last = <oms_gw_status_t*>PyMem_Malloc(n_exchanges * sizeof(oms_gw_status_t))
        self.gw_heard_ns = <int64_t*>PyMem_Malloc(n_exchanges * sizeof(int64_t))
        self.gw_n_status = <uint64_t*>PyMem_Malloc(n_exchanges * sizeof(uint64_t))
        if (self.route_offsets == NULL or self.route_lengths == NULL or self.route_accounts == NULL
                or self.wire_errors == NULL or self.gw_last == NULL or self.gw_heard_ns == NULL
                or self.gw_n_status == NULL):
            raise MemoryError("EngineLoop: allocation failed")
        memset(self.wire_errors, 0, 16 * sizeof(uint64_t))
        memset(self.gw_last, 0, n_exchanges * sizeof(oms_gw_status_t))
        memset(self.gw_heard_ns, 0, n_exchanges * sizeof(int64_t))
        memset(self.gw_n_status, 0, n_exchanges * sizeof(uint64_t))
        self.cur_role = ROLE_ADMIN
        self.cur_allowed = EVERY
        self.cur_strategies = EVERY
        self.cur_mask = _NOBODY
        self.audit = True
        self.cold = {}
        self.cold_applied = {}
        self.set_journal(journal)

    def __dealloc__(self):
        PyMem_Free(self.route_offsets)
        PyMem_Free(self.route_lengths)
        PyMem_Free(self.route_accounts)
        PyMem_Free(self.wire_errors)
        PyMem_Free(self.gw_last)
        PyMem_Free(self.gw_heard_ns)
        PyMem_Free(self.gw_n_status)

    def set_journal(self, JournalStage journal):
        """Journal to ``journal`` from now on (None: a NullJournal, nothing is kept)."""
        self.journal = NullJournal() if journal is None else journal
        self.journal_keeps = not isinstance(self.journal, NullJournal)

    # -------------------------------------------------------------------- state for snapshots
    def engine_state(self):
        """The loop's own state that a snapshot must keep beside the core's."""
        return {"seq": self.seq, "gen_cl_ord_id": self.gen_cl_ord_id}

    def restore_engine_state(self, dict state):
        self.seq = state["seq"]
        self.gen_cl_ord_id = state["gen_cl_ord_id"]

    def next_cl_ord_id(self):
        """A client order id for an order the engine makes itself (deterministic)."""
        self.gen_cl_ord_id += 1
        return (<uint64_t>1 << 63) | self.gen_cl_ord_id

    def timer_due(self, int64_t ts):
        """True when a GTD / DAY order is due to expire at ``ts`` (a timer input is needed)."""
        cdef HeapSet h = self.core.expiries
        return h.size(0) > 0 and h.top(0).key <= ts

    def wire_error_counts(self):
        return {i: self.wire_errors[i] for i in range(16) if self.wire_errors[i]}

    # -------------------------------------------------------------------- batches
    def begin(self, int role, object allowed, object mask, bint auto_subscribe):
        """Start a batch for one client (or the gateways / timers: role ADMIN, mask empty).

        ``allowed``: the accounts the sender may act on; ``mask``: the accounts whose events
        go into its reply (the session's own set: ``auto_subscribe`` adds to it). Each is an
        :class:`~oms_core.engine.idset.IdSet` or an integer bit mask.
        """
        self.c_begin(role, _ids(allowed), _ids(mask), auto_subscribe)

    def limit_peer(self, object strategies, int64_t exchange):
        """After :meth:`begin`: the sender is a publisher allowed only ``strategies`` (an
        IdSet or a bit mask), or a gateway of ``exchange`` (its ``allowed`` accounts are its
        venue accounts)."""
        self.cur_strategies = _ids(strategies)
        self.cur_exchange = exchange

    cdef int c_begin(self, int role, IdSet allowed, IdSet mask,
                     bint auto_subscribe) except -1:
        cdef Py_ssize_t i
        self.reply.reset()
        self.wr.reset()
        for i in range(len(self.gw)):
            (<OutBuf>self.gw[i]).reset()
        self.n_routed = 0
        self.cur_role = role
        self.cur_allowed = allowed
        self.cur_mask = mask
        self.cur_strategies = EVERY
        self.cur_exchange = -1
        self.auto_subscribe = auto_subscribe
        return 0

    def routes_to(self, IdSet mask not None):
        """True when an event of this batch is of an account in ``mask``."""
        cdef uint32_t i
        for i in range(self.n_routed):
            if mask.has(self.route_accounts[i]):
                return True
        return False

    def select(self, object mask):
        """Frames of this batch's events whose account is in ``mask`` (for other sessions)."""
        cdef IdSet m = _ids(mask)
        cdef OutBuf out = OutBuf(4096)
        cdef uint32_t i
        for i in range(self.n_routed):
            if m.has(self.route_accounts[i]):
                out.append(self.wr.data + self.route_offsets[i], self.route_lengths[i])
        return out.frames()

    @property
    def gw_pending(self):
        """True when this batch wrote GW_* records."""
        for b in self.gw:
            if (<OutBuf>b).n:
                return True
        return False

    def gateway_frames(self):
        """[(exchange id, [frames])] of the GW_* records of this batch."""
        cdef list out = []
        cdef int e
        cdef OutBuf b
        for e in range(len(self.gw)):
            b = <OutBuf>self.gw[e]
            if b.n:
                out.append((e, b.frames()))
        return out

    # -------------------------------------------------------------------- frames in
    def on_client_frame(self, object frame, int64_t recv_ns):
        """Handle one frame from a client (after ``begin``); return the number of records."""
        cdef const uint8_t[::1] view
        cdef const uint8_t* data
        cdef Py_ssize_t n
        if type(frame) is bytes:
            data = <const uint8_t*>PyBytes_AS_STRING(frame)
            n = PyBytes_GET_SIZE(frame)
        else:
            view = frame
            n = view.shape[0]
            data = &view[0] if n > 0 else NULL
        return self.c_client_frame(data, n, recv_ns)

    cdef int c_client_frame(self, const uint8_t* data, Py_ssize_t n, int64_t recv_ns) except -1:
        cdef uint32_t count = 0
        cdef Py_ssize_t err_off = 0
        cdef int err = wire_check_frame(data, n, &count, &err_off)
        cdef oms_hdr_t h
        cdef Py_ssize_t off = 0
        cdef int mt, code
        cdef uint64_t rid = 0
        cdef int bad_type = 0
        self.n_frames += 1
        if err != OMS_WIRE_OK:
            self.n_bad_frames += 1
            self.wire_errors[err & 15] += 1
            if n - err_off >= OMS_WIRE_HEADER_SIZE:
                memcpy(&h, data + err_off, OMS_WIRE_HEADER_SIZE)
                if h.magic == OMS_WIRE_MAGIC:
                    rid = h.request_id
                    bad_type = h.msg_type
            self._protocol_error(rid, <uint32_t>err_off, err, bad_type)
            return 0
        while off < n:
            memcpy(&h, data + off, OMS_WIRE_HEADER_SIZE)
            mt = h.msg_type
            self.n_records += 1
            if mt >= 64:
                self.n_wrong_direction += 1
                self.wire_errors[OMS_WIRE_WRONG_DIRECTION] += 1
                self._protocol_error(h.request_id, <uint32_t>off, OMS_WIRE_WRONG_DIRECTION, mt)
            elif not self._authorize(mt, data + off):
                self.n_unauthorized += 1
                self.wire_errors[OMS_WIRE_UNAUTHORIZED] += 1
                self._protocol_error(h.request_id, <uint32_t>off, OMS_WIRE_UNAUTHORIZED, mt)
                if self.audit:
                    self._audit(mt, data + off, recv_ns, OMS_AUDIT_REFUSED,
                                OMS_WIRE_UNAUTHORIZED)
            elif mt == OMS_MSG_HEARTBEAT:
                self._heartbeat(data + off)
            elif mt == OMS_MSG_QUERY:
                self._query(data + off)
                if self.audit and self.audit_queries:
                    self._audit(mt, data + off, recv_ns, self.ans_outcome, self.ans_code)
            elif mt == OMS_MSG_HELLO:
                code = self.py_command(mt, PyBytes_FromStringAndSize(<char*>data + off,
                                                                     h.length))
                if code == 0:
                    self._ack(data + off, 0, 0, 0, 0, 0, recv_ns, False)
                else:
                    self._reject(data + off, code, 0, 0, 0, recv_ns, False)
                if self.audit:
                    self._audit(mt, data + off, recv_ns, self.ans_outcome, self.ans_code)
            else:
                if self.live:
                    self._journal_input(mt, recv_ns, data + off, h.length)
                self.ans_outcome = 0
                self.ans_oid = 0
                self.ans_cl = 0
                self.c_apply(mt, recv_ns, data + off, h.length, True)
                if self.audit:
                    self._audit(mt, data + off, recv_ns, self.ans_outcome, self.ans_code)
            off += h.length
        return count

    # -------------------------------------------------------------------- the audit trail
    def set_sender(self, bytes name):
        """The identity name of the key that sends the frames that follow (for their AUDIT
        records; the engine's stand-ins AUDIT_INSECURE / AUDIT_ENGINE when no key does)."""
        self.c_set_sender(name)

    cdef int c_set_sender(self, bytes name) except -1:
        cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
        if n > OMS_AUDIT_SENDER_BYTES:
            n = OMS_AUDIT_SENDER_BYTES
        memset(self.cur_sender, 0, OMS_AUDIT_SENDER_BYTES)
        memcpy(self.cur_sender, PyBytes_AS_STRING(name), n)
        return 0

    def audit_command(self, bytes record, int64_t recv_ns):
        """Audit a command the engine applied itself (``apply_input`` live), as answered."""
        if self.audit and PyBytes_GET_SIZE(record) >= OMS_WIRE_HEADER_SIZE:
            self._audit((<const oms_hdr_t*>PyBytes_AS_STRING(record)).msg_type,
                        <const uint8_t*>PyBytes_AS_STRING(record), recv_ns, self.ans_outcome,
                        self.ans_code)

    cdef int _audit(self, int mt, const uint8_t* rec, int64_t recv_ns, int outcome,
                    int code) except -1:
        """One AUDIT record of the command at ``rec`` (validated, of type ``mt``) and its
        answer, with the current sender: journaled as a KIND_AUDIT input and applied like one,
        so a replay gives it the same event sequence as the live run."""
        cdef oms_audit_t a
        cdef order_t* o
        _hdr(&a, OMS_MSG_AUDIT, sizeof(oms_audit_t), 0, (<const oms_hdr_t*>rec).request_id, 0,
             recv_ns)
        a.event_ns = recv_ns
        a.account = OMS_ANY_ID
        a.strategy = OMS_ANY_ID
        a.instrument = OMS_ANY_ID
        a.code = code
        a.cmd_type = mt
        a.role = self.cur_role
        a.outcome = outcome
        memcpy(a.sender, self.cur_sender, OMS_AUDIT_SENDER_BYTES)
        # the ids, where the wire spec puts them in this command
        cdef int at = oms_account_offset(mt)
        if at >= 0:
            memcpy(&a.account, rec + at, sizeof(uint32_t))
        at = oms_strategy_offset(mt)
        if at >= 0:
            memcpy(&a.strategy, rec + at, sizeof(uint32_t))
        at = oms_instrument_offset(mt)
        if at >= 0:
            memcpy(&a.instrument, rec + at, sizeof(uint32_t))
        # what else names the command, by type
        if mt == OMS_MSG_NEW_ORDER:
            a.client_order_id = (<const oms_new_order_t*>rec).client_order_id
        elif mt == OMS_MSG_CANCEL:
            a.order_id = (<const oms_cancel_t*>rec).order_id
            a.client_order_id = (<const oms_cancel_t*>rec).client_order_id
        elif mt == OMS_MSG_REPLACE:
            a.order_id = (<const oms_replace_t*>rec).order_id
            a.client_order_id = (<const oms_replace_t*>rec).client_order_id
        elif mt == OMS_MSG_NEW_BRACKET:
            a.client_order_id = (<const oms_new_bracket_t*>rec).entry_client_order_id
        elif mt == OMS_MSG_NEW_OCO:
            a.client_order_id = (<const oms_new_oco_t*>rec).a_client_order_id
        elif mt == OMS_MSG_SIGNAL:
            a.value = (<const oms_signal_t*>rec).value
            a.action = (<const oms_signal_t*>rec).mode
        elif mt == OMS_MSG_QUERY:
            a.order_id = (<const oms_query_t*>rec).order_id
            a.action = (<const oms_query_t*>rec).kind
        elif mt == OMS_MSG_ADMIN:
            a.value = (<const oms_admin_t*>rec).value
            a.action = (<const oms_admin_t*>rec).action
            if a.action == OMS_ADMIN_KILL or a.action == OMS_ADMIN_RESUME:
                # the scope's ids only: a global switch is on every account, not account 0
                if (<const oms_admin_t*>rec).scope == OMS_SCOPE_GLOBAL:
                    a.account = OMS_ANY_ID
                if (<const oms_admin_t*>rec).scope != OMS_SCOPE_STRATEGY:
                    a.strategy = OMS_ANY_ID
        elif mt == OMS_MSG_HELLO:
            a.value = <int64_t>(<const oms_hello_t*>rec).client_id
        if outcome != OMS_AUDIT_REFUSED:
            # the order the answer names (a cancel by client order id, a new order's id)
            if self.ans_oid != 0:
                a.order_id = self.ans_oid
            if self.ans_cl != 0:
                a.client_order_id = self.ans_cl
        if (mt == OMS_MSG_CANCEL or mt == OMS_MSG_REPLACE) and a.order_id != 0:
            o = self.core.orders.find(a.order_id)
            if o != NULL and o.account == a.account:  # what the order is of
                a.strategy = o.strategy
                a.instrument = o.instrument
        self.n_audit += 1
        if self.live:
            self._journal_input(KIND_AUDIT, recv_ns, <const uint8_t*>&a, sizeof(oms_audit_t))
        return self.c_apply(KIND_AUDIT, recv_ns, <const uint8_t*>&a, sizeof(oms_audit_t), False)

    cdef int _journal_input(self, int kind, int64_t ts, const uint8_t* p,
                            Py_ssize_t n) except -1:
        self.dirty = True
        if not self.journal_keeps:
            return 0
        return self.journal.c_append_input(kind, ts, p, n)

    def on_gateway_frame(self, object frame, int64_t recv_ns):
        """Handle one frame from a gateway (exec reports, market data, status)."""
        cdef const uint8_t[::1] view
        cdef const uint8_t* data
        cdef Py_ssize_t n
        if type(frame) is bytes:
            data = <const uint8_t*>PyBytes_AS_STRING(frame)
            n = PyBytes_GET_SIZE(frame)
        else:
            view = frame
            n = view.shape[0]
            data = &view[0] if n > 0 else NULL
        return self.c_gateway_frame(data, n, recv_ns)

    cdef int c_gateway_frame(self, const uint8_t* data, Py_ssize_t n,
                             int64_t recv_ns) except -1:
        cdef uint32_t count = 0
        cdef Py_ssize_t err_off = 0, off = 0
        cdef oms_hdr_t h
        cdef int err = wire_check_frame(data, n, &count, &err_off)
        if err != OMS_WIRE_OK:
            self.n_gw_errors += 1
            self.wire_errors[err & 15] += 1
            return 0
        while off < n:
            memcpy(&h, data + off, OMS_WIRE_HEADER_SIZE)
            self.n_gw_records += 1
            if self.cur_role == ROLE_GATEWAY and not self._gateway_may(h.msg_type, data + off):
                self.n_gw_unauthorized += 1
                self.wire_errors[OMS_WIRE_UNAUTHORIZED] += 1
            elif h.msg_type == OMS_MSG_GW_EXEC_REPORT or h.msg_type == OMS_MSG_GW_MARKET_DATA:
                if self.live:
                    self._journal_input(h.msg_type, recv_ns, data + off, h.length)
                self.c_apply(h.msg_type, recv_ns, data + off, h.length, False)
            elif h.msg_type == OMS_MSG_GW_STATUS:
                self._keep_gateway_status(data + off, recv_ns)
                if self.py_gateway is not None:
                    self.py_gateway(PyBytes_FromStringAndSize(<char*>data + off, h.length))
            else:
                self.n_gw_errors += 1
                self.wire_errors[OMS_WIRE_WRONG_DIRECTION] += 1
            off += h.length
        return count

    def commit(self):
        """Journal the batch's event records and commit, before anything is sent."""
        self.c_commit()

    cdef int c_commit(self) except -1:
        if not self.live or not (self.dirty or self.wr.n):
            return 0
        self.dirty = False
        self.journal.c_append_events(self.wr.data, self.wr.n)  # every record in wr, in order
        return self.journal.c_commit()

    # -------------------------------------------------------------------- the one entry point
    def apply_input(self, int kind, int64_t ts, bytes payload, bint replay=True):
        """Apply one state-changing input. ``replay``: answers and sends are suppressed
        (nothing is journaled); the event sequence advances exactly as it did live."""
        cdef bint was_live = self.live
        if replay:
            self.c_begin(ROLE_ADMIN, EVERY, _NOBODY, False)
            self.live = False
        try:
            if self.live:
                self._journal_input(kind, ts, <const uint8_t*>PyBytes_AS_STRING(payload),
                                    PyBytes_GET_SIZE(payload))
            self.c_apply(kind, ts, <const uint8_t*>PyBytes_AS_STRING(payload),
                         PyBytes_GET_SIZE(payload), kind < 64)
        finally:
            self.live = was_live
            if replay:
                self.reply.reset()
                self.wr.reset()
                for b in self.gw:
                    (<OutBuf>b).reset()
                self.n_routed = 0

    cdef int c_apply(self, int kind, int64_t ts, const uint8_t* rec, Py_ssize_t n,
                     bint answer) except -1:
        cdef oms_hdr_t h
        cdef oms_gw_market_data_t md
        cdef object res
        cdef uint8_t* p
        if kind < 192 and (n < OMS_WIRE_HEADER_SIZE):
            return 0
        if kind == OMS_MSG_NEW_ORDER:
            self._new_order(rec, ts, answer)
        elif kind == OMS_MSG_CANCEL:
            self._cancel(rec, ts, answer)
        elif kind == OMS_MSG_REPLACE:
            self._replace(rec, ts, answer)
        elif kind == OMS_MSG_GW_EXEC_REPORT:
            self._exec_report(rec, ts)
        elif kind == OMS_MSG_GW_MARKET_DATA:
            memcpy(&md, rec, sizeof(md))
            if md.instrument < self.core.n_instruments and self.core.instruments[
                    md.instrument].active:
                self.core.c_set_price(md.instrument, md.last, md.bid, md.ask, ts,
                                      (md.md_flags & OMS_MD_FLAG_STALE) != 0)
                if (md.md_flags & OMS_MD_FLAG_TRADE) != 0 and self.bars is not None:
                    self.bars.c_trade(md.instrument, ts, md.last)
        elif kind == KIND_TIMER:
            self.core.on_timer(ts)
        elif kind == KIND_MARK_TO_MARKET:
            self.core.c_mark_to_market(ts)
        elif kind == KIND_START_OF_DAY:
            self.core.start_of_day(ts)
        elif kind == KIND_AUDIT:
            # the record as journaled, under the next event sequence
            if n == sizeof(oms_audit_t):
                p = self._event(OMS_MSG_AUDIT, sizeof(oms_audit_t), 0, False)
                memcpy(p + OMS_WIRE_HEADER_SIZE, rec + OMS_WIRE_HEADER_SIZE,
                       sizeof(oms_audit_t) - OMS_WIRE_HEADER_SIZE)
                (<oms_hdr_t*>p).request_id = (<const oms_hdr_t*>rec).request_id
            return 0
        else:
            return self._cold(kind, ts, rec, n, answer)
        self._drain()
        return 0

    cdef int _cold(self, int kind, int64_t ts, const uint8_t* rec, Py_ssize_t n,
                   bint answer) except -1:
        cdef object payload = PyBytes_FromStringAndSize(<char*>rec, n)
        cdef object handler = self.cold.get(kind)
        cdef object res = _NO_HANDLER if handler is None else handler(ts, payload)
        cdef object hook = self.cold_applied.get(kind)
        cdef ColdAnswer a
        if hook is not None:
            hook(ts, payload, res)
        self._drain()
        if answer and kind < 64:
            a = <ColdAnswer?>res
            if a.code == 0:
                self._ack(rec, a.order_id, a.leg2_order_id, a.leg3_order_id, a.client_order_id,
                          a.account, ts, True)
            else:
                self._reject(rec, a.code, a.client_order_id, a.order_id, a.account, ts, True)
        return 0

    # -------------------------------------------------------------------- cold handlers
    def register_cold(self, int kind, object handler not None):
        """Handle input ``kind`` with ``handler(ts, payload)`` (see ``cold`` in loop.pxd).

        A kind is registered once: a second handler for it is refused (ValueError), so no
        component can take over another's kind by accident."""
        if kind < 0 or kind >= 256:
            raise ValueError(f"input kind {kind} out of range")
        if kind in _COMPILED_KINDS:
            raise ValueError(f"input kind {kind} is applied by the loop itself")
        if kind in self.cold:
            raise ValueError(f"input kind {kind} already has a cold handler")
        self.cold[kind] = handler

    def on_cold_applied(self, int kind, object hook not None):
        """Run ``hook(ts, payload, answer)`` after each input of cold ``kind`` is applied (once
        per kind: a second hook is refused, ValueError)."""
        if kind in self.cold_applied:
            raise ValueError(f"input kind {kind} already has an applied hook")
        self.cold_applied[kind] = hook

    def cold_kinds(self):
        """The kinds that have a cold handler, sorted."""
        return sorted(self.cold)

    cdef int _gateway_may(self, int mt, const uint8_t* rec) noexcept:
        """A gateway reports only on orders the engine sent to its exchange, of its venue
        accounts; its market data is of instruments of its exchange (a key of another
        gateway or of a stranger moves nothing)."""
        cdef uint32_t instrument
        cdef order_t* o
        if not oms_role_may_send(ROLE_GATEWAY, mt):  # the wire spec's table (ROLE_MAY)
            return 0
        if mt == OMS_MSG_GW_EXEC_REPORT:
            # judged by the order it names, never by the record's own fields
            o = self.core.orders.find((<const oms_gw_exec_report_t*>rec).order_id)
            if o == NULL:
                return self.cur_allowed.has((<const oms_gw_exec_report_t*>rec).account)
            if self.cur_exchange < 0:  # a gateway known by its accounts only
                return self.cur_allowed.has(o.account)
            return (o.instrument < self.core.n_instruments and
                    self.core.instruments[o.instrument].exchange_id ==
                    <uint32_t>self.cur_exchange)
        if mt == OMS_MSG_GW_MARKET_DATA:
            instrument = (<const oms_gw_market_data_t*>rec).instrument
            return (self.cur_exchange < 0 or (
                instrument < self.core.n_instruments and
                self.core.instruments[instrument].exchange_id == <uint32_t>self.cur_exchange))
        if mt == OMS_MSG_GW_STATUS:  # only for itself
            return self.cur_exchange < 0 or (<const oms_gw_status_t*>rec).gateway_id == (
                <uint32_t>self.cur_exchange)
        return 0

    # -------------------------------------------------------------------- commands
    cdef int _authorize(self, int mt, const uint8_t* rec) noexcept:
        # which role may send which kind: the wire spec's table (ROLE_MAY); the ids: here
        cdef uint32_t account
        cdef int role = self.cur_role
        if not oms_role_may_send(role, mt):
            return 0
        if role == ROLE_ADMIN or mt == OMS_MSG_HELLO or mt == OMS_MSG_HEARTBEAT:
            return 1
        if role == ROLE_PUBLISHER:
            return mt == OMS_MSG_SIGNAL and self.cur_strategies.has(
                (<const oms_signal_t*>rec).strategy)
        # a viewer's or trader's command carries one account, where the wire spec puts it
        cdef int at = oms_account_offset(mt)
        if at < 0:
            return 0
        memcpy(&account, rec + at, sizeof(uint32_t))
        return account != OMS_ANY_ID and self.cur_allowed.has(account)

    cdef int _new_order(self, const uint8_t* rec, int64_t ts, bint answer) except -1:
        cdef oms_new_order_t c
        memcpy(&c, rec, sizeof(c))
        cdef uint64_t oid = 0
        cdef int code
        cdef order_t* o
        if self.auto_subscribe and c.account < self.core.risk.n_accounts:
            self.cur_mask.add(c.account)
        if c.account < self.core.risk.n_accounts:
            oid = self.core.orders.find_client_id(c.account, c.client_order_id)
        if oid != 0:
            # a retry: the same order again is answered with the original; anything else is
            # a second order under a used client order id
            o = self.core.orders.find(oid)
            if (o != NULL and o.instrument == c.instrument and o.strategy == c.strategy
                    and o.side == c.side and o.order_type == c.order_type and o.tif == c.tif
                    and o.price == c.price and o.trigger == c.trigger_price
                    and o.flags == c.order_flags and o.expire_ts == c.expire_ns
                    and o.trail_offset == c.trail_offset
                    and (o.qty == c.quantity or o.parent_id != 0)):
                self.n_duplicate_retries += 1
                if answer:
                    self._ack(rec, oid, 0, 0, c.client_order_id, c.account, ts, True)
                return 0
            code = R_DUPLICATE_CLIENT_ORDER_ID
        else:
            code = self.core.c_submit(c.account, c.strategy, c.instrument, c.client_order_id,
                                      c.side, c.order_type, c.tif, c.price, c.trigger_price,
                                      c.quantity, c.order_flags, c.expire_ns, ts,
                                      c.trail_offset, &oid)
        if answer:
            if code == R_OK:
                self._ack(rec, oid, 0, 0, c.client_order_id, c.account, ts, True)
            else:
                self._reject(rec, code, c.client_order_id, 0, c.account, ts, True)
        return 0

    cdef int _cancel(self, const uint8_t* rec, int64_t ts, bint answer) except -1:
        cdef oms_cancel_t c
        memcpy(&c, rec, sizeof(c))
        cdef uint64_t oid = c.order_id
        cdef uint64_t cl = c.client_order_id
        cdef order_t* o
        if self.auto_subscribe and c.account < self.core.risk.n_accounts:
            self.cur_mask.add(c.account)
        if oid == 0 and c.account < self.core.risk.n_accounts:
            oid = self.core.orders.find_client_id(c.account, cl)
        o = self.core.orders.find(oid)
        if o != NULL and o.account == c.account:
            cl = o.cl_ord_id
        cdef int code = self.core.c_cancel(c.account, oid, ts)
        if answer:
            if code == R_OK:
                self._ack(rec, oid, 0, 0, cl, c.account, ts, True)
            else:
                self._reject(rec, code, cl, oid, c.account, ts, True)
        return 0

    cdef int _replace(self, const uint8_t* rec, int64_t ts, bint answer) except -1:
        cdef oms_replace_t c
        memcpy(&c, rec, sizeof(c))
        cdef uint64_t oid = c.order_id
        cdef uint64_t cl = c.client_order_id
        cdef int64_t price = c.price, qty = c.quantity
        cdef int code
        if self.auto_subscribe and c.account < self.core.risk.n_accounts:
            self.cur_mask.add(c.account)
        if oid == 0 and c.account < self.core.risk.n_accounts:
            oid = self.core.orders.find_client_id(c.account, cl)
        cdef order_t* o = self.core.orders.find(oid)
        if o != NULL and o.account == c.account:
            cl = o.cl_ord_id
            if price == 0:
                price = o.price
            if qty == 0:
                qty = o.qty
        if c.trigger_price != 0 or price < 0 or qty < 0:
            code = R_NOT_REPLACEABLE if c.trigger_price != 0 else R_INVALID_QUANTITY
        else:
            code = self.core.c_replace(c.account, oid, price, qty, ts)
        if answer:
            if code == R_OK:
                self._ack(rec, oid, 0, 0, cl, c.account, ts, True)
            else:
                self._reject(rec, code, cl, oid, c.account, ts, True)
        return 0

    cdef int _heartbeat(self, const uint8_t* rec) except -1:
        cdef oms_heartbeat_t c
        memcpy(&c, rec, sizeof(c))
        cdef oms_heartbeat_t* a = <oms_heartbeat_t*>self.reply.reserve(sizeof(oms_heartbeat_t))
        _hdr(a, OMS_MSG_HEARTBEAT, sizeof(oms_heartbeat_t), 0, c.hdr.request_id, 0, _now())
        a.last_seq = self.seq
        a.echo_ns = c.hdr.send_ns
        return 0

    # -------------------------------------------------------------------- gateway reports
    cdef int _exec_report(self, const uint8_t* rec, int64_t ts) except -1:
        cdef oms_gw_exec_report_t r
        memcpy(&r, rec, sizeof(r))
        cdef int code = R_OK
        cdef int et = r.exec_type
        cdef order_t* o
        cdef oms_fill_t* f
        if et == OMS_EXEC_ACK:
            code = self.core.c_on_ack(r.order_id, ts)
        elif et == OMS_EXEC_FILL:
            code = self.core.c_on_fill(r.order_id, r.trade_id, r.last_qty, r.last_price, r.fee,
                                       r.fee_asset, r.liquidity, ts)
            if code == R_OK:
                o = self.core.orders.find(r.order_id)
                if o != NULL:
                    f = <oms_fill_t*>self._event(OMS_MSG_FILL, sizeof(oms_fill_t), o.account,
                                                 True)
                    f.order_id = o.order_id
                    f.client_order_id = o.cl_ord_id
                    f.trade_id = r.trade_id
                    f.quantity = r.last_qty
                    f.price = r.last_price
                    f.fee = r.fee
                    f.exch_ts_ns = r.exch_ts_ns
                    f.event_ns = ts
                    f.account = o.account
                    f.strategy = o.strategy
                    f.instrument = o.instrument
                    f.fee_asset = r.fee_asset
                    f.side = o.side
                    f.liquidity = r.liquidity
                    self._publish(<uint8_t*>f, sizeof(oms_fill_t), o.account, True)
        elif et == OMS_EXEC_CANCELED:
            code = self.core.c_on_canceled(r.order_id, ts)
        elif et == OMS_EXEC_REJECT:
            o = self.core.orders.find(r.order_id)
            if o != NULL:
                # before on_reject: a refused protective child's slot may be reused inside it
                # (the zeroed slot then holds no code); kept on the order for its updates
                o.venue_code = r.exch_code
            self.reject_venue_code = r.exch_code
            code = self.core.on_reject(r.order_id, R_VENUE_REJECTED, ts)
            if code != R_OK and o != NULL:
                o.venue_code = 0  # not rejected now (e.g. already acknowledged): no code
        elif et == OMS_EXEC_EXPIRED:
            code = self.core.on_expired(r.order_id, ts)
        elif et == OMS_EXEC_REPLACED:
            code = self.core.on_replaced(r.order_id, ts)
        elif et == OMS_EXEC_CANCEL_REJECT:
            code = self.core.on_cancel_reject(r.order_id, ts)
        elif et == OMS_EXEC_REPLACE_REJECT:
            code = self.core.on_replace_reject(r.order_id, ts)
        elif et == OMS_EXEC_UNKNOWN_ORDER or (et == OMS_EXEC_STATUS and r.status == 0):
            # the venue's answer is in doubt (status 0) or the venue does not list the order:
            # UNKNOWN until the gateway's query or a reconciliation resolves it; a STATUS with
            # a status is informational (the gateway reports ACK / FILL / CANCELED itself)
            code = self.core.c_on_unknown(r.order_id, ts)
        if code != R_OK:
            self.n_gw_errors += 1
        return 0

    # -------------------------------------------------------------------- events out
    cdef uint8_t* _event(self, uint16_t msg_type, uint16_t size, uint32_t account,
                         bint route) except NULL:
        cdef uint8_t* p = self.wr.reserve(size)
        self.seq += 1
        _hdr(p, msg_type, size, self.seq, 0, 0, _now())
        return p

    cdef int _publish(self, uint8_t* rec, uint16_t size, uint32_t account,
                      bint route) except -1:
        """After the record at ``rec`` (inside wr) is filled: copy it to the reply when the
        current client follows the account, and remember it for the other sessions."""
        cdef uint32_t* grown32
        cdef uint16_t* grown16
        cdef uint32_t* grown_a
        if not route:
            return 0
        if self.live and self.cur_mask.has(account):
            self.reply.append(rec, size)
        if self.n_routed == self.route_cap:
            grown32 = <uint32_t*>PyMem_Realloc(self.route_offsets, 2 * self.route_cap * sizeof(uint32_t))
            if grown32 == NULL:
                raise MemoryError()
            self.route_offsets = grown32
            grown16 = <uint16_t*>PyMem_Realloc(self.route_lengths, 2 * self.route_cap * sizeof(uint16_t))
            if grown16 == NULL:
                raise MemoryError()
            self.route_lengths = grown16
            grown_a = <uint32_t*>PyMem_Realloc(self.route_accounts, 2 * self.route_cap * sizeof(uint32_t))
            if grown_a == NULL:
                raise MemoryError()
            self.route_accounts = grown_a
            self.route_cap *= 2
        self.route_offsets[self.n_routed] = <uint32_t>(rec - self.wr.data)
        self.route_lengths[self.n_routed] = size
        self.route_accounts[self.n_routed] = account
        self.n_routed += 1
        return 0

    cdef uint8_t* _answer(self, uint16_t msg_type, uint16_t size, uint32_t account,
                          bint journaled) except NULL:
        """Room for an ACK / REJECT: a sequenced event when the command was journaled (copied
        to the reply by ``_answered`` once filled in), else a reply-only answer."""
        cdef uint8_t* p
        if journaled:
            return self._event(msg_type, size, account, False)
        p = self.reply.reserve(size)
        _hdr(p, msg_type, size, 0, 0, 0, _now())
        return p

    cdef int _answered(self, uint8_t* p, uint16_t size, bint journaled) except -1:
        if journaled and self.live:
            self.reply.append(p, size)
        return 0

    cdef int _ack(self, const uint8_t* cmd, uint64_t oid, uint64_t oid2, uint64_t oid3,
                  uint64_t cl_ord_id, uint32_t account, int64_t recv_ns,
                  bint journaled) except -1:
        cdef const oms_hdr_t* ch = <const oms_hdr_t*>cmd
        cdef oms_ack_t* a = <oms_ack_t*>self._answer(OMS_MSG_ACK, sizeof(oms_ack_t), account,
                                                     journaled)
        self.n_acks += 1
        self.ans_outcome = OMS_AUDIT_ACK
        self.ans_code = 0
        self.ans_oid = oid
        self.ans_cl = cl_ord_id
        a.hdr.request_id = ch.request_id
        a.order_id = oid
        a.leg2_order_id = oid2
        a.leg3_order_id = oid3
        a.client_order_id = cl_ord_id
        a.recv_ns = recv_ns
        a.ack_ns = a.hdr.send_ns
        a.account = account
        a.cmd_type = ch.msg_type
        return self._answered(<uint8_t*>a, sizeof(oms_ack_t), journaled)

    cdef int _reject(self, const uint8_t* cmd, int code, uint64_t cl_ord_id,
                     uint64_t order_id, uint32_t account, int64_t recv_ns,
                     bint journaled) except -1:
        cdef const oms_hdr_t* ch = <const oms_hdr_t*>cmd
        cdef oms_reject_t* r = <oms_reject_t*>self._answer(OMS_MSG_REJECT, sizeof(oms_reject_t),
                                                           account, journaled)
        self.n_rejects += 1
        self.ans_outcome = OMS_AUDIT_REJECT
        self.ans_code = code
        self.ans_oid = order_id
        self.ans_cl = cl_ord_id
        r.hdr.request_id = ch.request_id
        r.client_order_id = cl_ord_id
        r.order_id = order_id
        r.recv_ns = recv_ns
        r.reject_ns = r.hdr.send_ns
        r.account = account
        r.code = code
        r.cmd_type = ch.msg_type
        return self._answered(<uint8_t*>r, sizeof(oms_reject_t), journaled)

    cdef int _protocol_error(self, uint64_t rid, uint32_t offset, int error,
                             int bad_type) except -1:
        cdef oms_protocol_error_t* e = <oms_protocol_error_t*>self.reply.reserve(
            sizeof(oms_protocol_error_t))
        _hdr(e, OMS_MSG_PROTOCOL_ERROR, sizeof(oms_protocol_error_t), 0, rid, 0, _now())
        e.bad_request_id = rid
        e.offset = offset
        e.error = error
        e.bad_type = bad_type
        return 0

    cdef int _fill_order(self, oms_order_update_t* u, order_t* o, int status) except -1:
        cdef int64_t live_qty = o.qty
        if o.status == ST_PENDING_REPLACE and o.pending_qty > o.qty:
            live_qty = o.pending_qty
        u.order_id = o.order_id
        u.client_order_id = o.cl_ord_id
        u.quantity = o.qty
        u.filled = o.filled
        u.leaves = 0 if _is_terminal(status) else (live_qty - o.filled if live_qty > o.filled
                                                   else 0)
        u.price = o.price
        u.trigger_price = o.trigger
        if o.filled > 0:
            u.avg_price = (o.fill_notional + o.filled // 2) // o.filled
        u.account = o.account
        u.strategy = o.strategy
        u.instrument = o.instrument
        u.reason = o.reason if status == ST_REJECTED else 0
        u.venue_code = o.venue_code if status == ST_REJECTED else 0
        u.side = o.side
        u.order_type = o.order_type
        u.tif = o.tif
        u.status = status
        u.hold = o.hold
        return 0

    cdef int _drain(self) except -1:
        """Turn the core's queued events into records; empty the queue."""
        cdef OmsCore core = self.core
        cdef uint64_t i
        cdef event_t* e
        cdef order_t* o
        cdef OutBuf g
        cdef oms_order_update_t* u
        cdef oms_position_update_t* pu
        cdef oms_trade_closed_t* tc
        cdef oms_balance_update_t* bal
        cdef oms_risk_alert_t* ra
        cdef oms_gw_new_order_t* gn
        cdef oms_gw_cancel_t* gc
        cdef oms_gw_replace_t* gr
        cdef position_t* pos
        cdef int64_t now = _now()
        cdef int64_t mult
        cdef uint32_t ex
        for i in range(core.n_events):
            e = &core.events[i]
            if e.type == EV_ORDER_UPDATE:
                u = <oms_order_update_t*>self._event(OMS_MSG_ORDER_UPDATE,
                                                     sizeof(oms_order_update_t), e.account,
                                                     True)
                o = core.orders.find(e.order_id)
                if o != NULL:
                    self._fill_order(u, o, e.code)
                else:
                    u.order_id = e.order_id
                    u.filled = e.a
                    u.account = e.account
                    u.strategy = e.strategy
                    u.instrument = e.instrument
                    u.status = e.code
                    u.hold = 0
                u.event_ns = e.ts
                self._publish(<uint8_t*>u, sizeof(oms_order_update_t), e.account, True)
            elif e.type == EV_SEND_ORDER or e.type == EV_SEND_CANCEL or (
                    e.type == EV_SEND_REPLACE):
                o = core.orders.find(e.order_id)
                if o == NULL or e.instrument >= core.n_instruments:
                    continue
                ex = core.instruments[e.instrument].exchange_id
                if ex >= <uint32_t>len(self.gw):
                    continue
                g = <OutBuf>self.gw[ex]
                if e.type == EV_SEND_ORDER:
                    o.ts_sent = e.ts  # an order in doubt is judged by how long ago it left
                    gn = <oms_gw_new_order_t*>g.reserve(sizeof(oms_gw_new_order_t))
                    _hdr(gn, OMS_MSG_GW_NEW_ORDER, sizeof(oms_gw_new_order_t), self.seq, 0, 0,
                         now)
                    gn.order_id = o.order_id
                    _venue_terms(gn, o, core.instruments[e.instrument].native_stops)
                    gn.quantity = o.qty
                    gn.expire_ns = o.expire_ts
                    gn.account = o.account
                    gn.instrument = o.instrument
                    gn.side = o.side
                    gn.tif = o.tif
                    gn.order_flags = o.flags
                elif e.type == EV_SEND_CANCEL:
                    gc = <oms_gw_cancel_t*>g.reserve(sizeof(oms_gw_cancel_t))
                    _hdr(gc, OMS_MSG_GW_CANCEL, sizeof(oms_gw_cancel_t), self.seq, 0, 0, now)
                    gc.order_id = o.order_id
                    gc.account = o.account
                    gc.instrument = o.instrument
                else:
                    gr = <oms_gw_replace_t*>g.reserve(sizeof(oms_gw_replace_t))
                    _hdr(gr, OMS_MSG_GW_REPLACE, sizeof(oms_gw_replace_t), self.seq, 0, 0, now)
                    gr.order_id = o.order_id
                    gr.price = e.a
                    gr.quantity = e.b
                    gr.account = o.account
                    gr.instrument = o.instrument
            elif e.type == EV_POSITION_UPDATE:
                pu = <oms_position_update_t*>self._event(OMS_MSG_POSITION_UPDATE,
                                                         sizeof(oms_position_update_t),
                                                         e.account, True)
                pos = core.ledger.position(e.account, e.instrument)
                mult = core.instruments[e.instrument].notional_mult
                pu.quantity = pos.qty
                pu.avg_price = pos.cost // (pos.qty * mult) if pos.qty != 0 and mult != 0 else 0
                pu.realized_pnl = pos.realized
                pu.open_buy_qty = pos.open_buy
                pu.open_sell_qty = pos.open_sell
                pu.fees = pos.fees
                pu.unrealized_pnl = pos.unrealized
                pu.unprotected = pos.unprotected
                pu.event_ns = e.ts
                pu.account = e.account
                pu.strategy = e.strategy
                pu.instrument = e.instrument
                self._publish(<uint8_t*>pu, sizeof(oms_position_update_t), e.account, True)
            elif e.type == EV_TRADE_CLOSED:
                tc = <oms_trade_closed_t*>self._event(OMS_MSG_TRADE_CLOSED,
                                                      sizeof(oms_trade_closed_t), e.account,
                                                      True)
                tc.realized_pnl = e.a
                tc.event_ns = e.ts
                tc.account = e.account
                tc.strategy = e.strategy
                tc.instrument = e.instrument
                tc.exit_reason = e.code
                self._publish(<uint8_t*>tc, sizeof(oms_trade_closed_t), e.account, True)
            elif e.type == EV_BALANCE_UPDATE:
                # a fill moved a balance: code = asset, a = total, b = locked
                bal = <oms_balance_update_t*>self._event(OMS_MSG_BALANCE_UPDATE,
                                                         sizeof(oms_balance_update_t),
                                                         e.account, True)
                bal.total = e.a
                bal.locked = e.b
                bal.free = e.a - e.b
                bal.event_ns = e.ts
                bal.account = e.account
                bal.asset = e.code
                self._publish(<uint8_t*>bal, sizeof(oms_balance_update_t), e.account, True)
            elif e.type == EV_ALERT:
                ra = <oms_risk_alert_t*>self._event(OMS_MSG_RISK_ALERT,
                                                    sizeof(oms_risk_alert_t), e.account, True)
                ra.order_id = e.order_id
                # a refused protective child: a = why the venue refused it (its code)
                ra.a = (self.reject_venue_code if e.code == ALERT_PROTECTION_REFUSED
                        and self.reject_venue_code else e.a)
                ra.b = e.b
                ra.event_ns = e.ts
                ra.account = e.account
                ra.strategy = e.strategy
                ra.instrument = e.instrument
                ra.alert = e.code
                self._keep_alert(<uint8_t*>ra)
                self._publish(<uint8_t*>ra, sizeof(oms_risk_alert_t), e.account, True)
        core.clear_events()
        self.reject_venue_code = 0
        return 0

    # -------------------------------------------------------------------- queries
    cdef int _query(self, const uint8_t* rec) except -1:
        cdef oms_query_t q
        memcpy(&q, rec, sizeof(q))
        cdef OmsCore core = self.core
        cdef uint64_t rid = q.hdr.request_id
        cdef IdSet allowed = self.cur_allowed
        cdef uint32_t one = q.account  # ANY_ID: every allowed account
        cdef uint32_t n_rows = 0, a, i, slot, a_lo = 0, a_hi = core.risk.n_accounts
        cdef int code = R_OK
        cdef order_t* o
        cdef oms_order_update_t* u
        cdef oms_position_update_t* pu
        cdef oms_balance_update_t* bu
        cdef oms_limit_update_t* lu
        cdef oms_kill_state_t* ks
        cdef oms_query_result_t* qr
        cdef position_t* pos
        cdef balance_t* bal
        cdef int64_t now = _now()
        cdef int64_t mult
        cdef int kind = q.kind
        if q.account != ANY_ID:
            if q.account >= core.risk.n_accounts or not core.risk.accounts[q.account].active:
                code = R_UNKNOWN_ACCOUNT
            a_lo, a_hi = q.account, q.account + 1
        if kind < OMS_QUERY_ORDERS or kind > OMS_QUERY_ALERTS:  # the wire's QueryKind range
            code = R_INVALID_FLAGS
        if code == R_OK:
            if kind == OMS_QUERY_GATEWAYS:
                n_rows += self._query_gateways(rid, now)
            elif kind == OMS_QUERY_ALERTS:
                n_rows += self._query_alerts(rid, one, q.order_id,
                                             self.cur_role == ROLE_ADMIN and q.account == ANY_ID,
                                             now)
            if kind == OMS_QUERY_ORDER:
                o = core.orders.find(q.order_id)
                if o == NULL or not allowed.has(o.account):
                    code = R_UNKNOWN_ORDER
                else:
                    u = <oms_order_update_t*>self.reply.reserve(sizeof(oms_order_update_t))
                    _hdr(u, OMS_MSG_ORDER_UPDATE, sizeof(oms_order_update_t), 0, rid,
                         OMS_HDR_FLAG_QUERY_ROW, now)
                    self._fill_order(u, o, o.status)
                    u.event_ns = now
                    n_rows += 1
            if (kind == OMS_QUERY_ORDERS or kind == OMS_QUERY_OPEN_ORDERS
                    or kind == OMS_QUERY_ACCOUNT):
                for slot in range(core.orders.used):
                    o = &core.orders.slots[slot]
                    if o.order_id == 0 or not allowed.has(o.account) or (
                            one != OMS_ANY_ID and o.account != one):
                        continue
                    if (kind != 1) and _is_terminal(o.status):
                        continue
                    if q.strategy != ANY_ID and o.strategy != q.strategy:
                        continue
                    if q.instrument != ANY_ID and o.instrument != q.instrument:
                        continue
                    u = <oms_order_update_t*>self.reply.reserve(sizeof(oms_order_update_t))
                    _hdr(u, OMS_MSG_ORDER_UPDATE, sizeof(oms_order_update_t), 0, rid,
                         OMS_HDR_FLAG_QUERY_ROW, now)
                    self._fill_order(u, o, o.status)
                    u.event_ns = now
                    n_rows += 1
            for a in range(a_lo, a_hi):
                if not allowed.has(a) or not core.risk.accounts[a].active:
                    continue
                # positions of one strategy when it is given
                if kind == OMS_QUERY_POSITIONS or kind == OMS_QUERY_ACCOUNT:
                    for i in range(core.n_instruments):
                        if not core.instruments[i].active:
                            continue
                        if q.instrument != ANY_ID and i != q.instrument:
                            continue
                        if q.strategy == ANY_ID:
                            pos = core.ledger.position(a, i)
                        else:
                            pos = core.ledger.find_strategy_position(a, q.strategy, i)
                            if pos == NULL:
                                continue
                        if pos.qty == 0 and pos.open_buy == 0 and pos.open_sell == 0 and (
                                pos.realized == 0):
                            continue
                        pu = <oms_position_update_t*>self.reply.reserve(
                            sizeof(oms_position_update_t))
                        _hdr(pu, OMS_MSG_POSITION_UPDATE, sizeof(oms_position_update_t), 0,
                             rid, OMS_HDR_FLAG_QUERY_ROW, now)
                        mult = core.instruments[i].notional_mult
                        pu.quantity = pos.qty
                        pu.avg_price = (pos.cost // (pos.qty * mult)
                                        if pos.qty != 0 and mult != 0 else 0)
                        pu.realized_pnl = pos.realized
                        pu.open_buy_qty = pos.open_buy
                        pu.open_sell_qty = pos.open_sell
                        pu.fees = pos.fees
                        pu.unrealized_pnl = pos.unrealized
                        pu.unprotected = pos.unprotected
                        pu.event_ns = now
                        pu.account = a
                        pu.strategy = q.strategy
                        pu.instrument = i
                        n_rows += 1
                if kind == OMS_QUERY_BALANCES or kind == OMS_QUERY_ACCOUNT:
                    for i in range(core.n_assets):
                        bal = core.ledger.balance(a, i)
                        if bal.total == 0 and bal.locked == 0:
                            continue
                        bu = <oms_balance_update_t*>self.reply.reserve(
                            sizeof(oms_balance_update_t))
                        _hdr(bu, OMS_MSG_BALANCE_UPDATE, sizeof(oms_balance_update_t), 0, rid,
                             OMS_HDR_FLAG_QUERY_ROW, now)
                        bu.total = bal.total
                        bu.free = bal.total - bal.locked
                        bu.locked = bal.locked
                        bu.event_ns = now
                        bu.account = a
                        bu.asset = i
                        n_rows += 1
                if kind == OMS_QUERY_LIMITS or kind == OMS_QUERY_ACCOUNT:
                    for i in range(1, N_LIMITS):
                        lu = <oms_limit_update_t*>self.reply.reserve(sizeof(oms_limit_update_t))
                        _hdr(lu, OMS_MSG_LIMIT_UPDATE, sizeof(oms_limit_update_t), 0, rid,
                             OMS_HDR_FLAG_QUERY_ROW, now)
                        lu.value = core.risk.accounts[a].limits[i]
                        lu.account = a
                        lu.limit = i
                        n_rows += 1
                if kind == OMS_QUERY_ACCOUNT:  # kill state of the account
                    ks = <oms_kill_state_t*>self.reply.reserve(sizeof(oms_kill_state_t))
                    _hdr(ks, OMS_MSG_KILL_STATE, sizeof(oms_kill_state_t), 0, rid,
                         OMS_HDR_FLAG_QUERY_ROW, now)
                    ks.account = a
                    ks.strategy = 0
                    ks.scope = 2
                    ks.kill_mode = core.risk.accounts[a].kill
                    ks.enabled = 0
                    n_rows += 1
            if kind == OMS_QUERY_ACCOUNT:  # the kill switches above every account: global,
                # then strategies
                ks = <oms_kill_state_t*>self.reply.reserve(sizeof(oms_kill_state_t))
                _hdr(ks, OMS_MSG_KILL_STATE, sizeof(oms_kill_state_t), 0, rid,
                     OMS_HDR_FLAG_QUERY_ROW, now)
                ks.account = 0
                ks.strategy = 0
                ks.scope = 1
                ks.kill_mode = core.risk.global_kill
                ks.enabled = 0
                n_rows += 1
                for i in range(core.risk.n_strategies):
                    if core.risk.strategy_kill[i] == 0:
                        continue
                    ks = <oms_kill_state_t*>self.reply.reserve(sizeof(oms_kill_state_t))
                    _hdr(ks, OMS_MSG_KILL_STATE, sizeof(oms_kill_state_t), 0, rid,
                         OMS_HDR_FLAG_QUERY_ROW, now)
                    ks.account = 0
                    ks.strategy = i
                    ks.scope = 3
                    ks.kill_mode = core.risk.strategy_kill[i]
                    ks.enabled = 0
                    n_rows += 1
        qr = <oms_query_result_t*>self.reply.reserve(sizeof(oms_query_result_t))
        _hdr(qr, OMS_MSG_QUERY_RESULT, sizeof(oms_query_result_t), 0, rid, 0, now)
        qr.n_rows = n_rows
        qr.code = code
        qr.kind = kind
        self.ans_outcome = OMS_AUDIT_ACK if code == R_OK else OMS_AUDIT_REJECT
        self.ans_code = code
        self.ans_oid = 0
        self.ans_cl = 0
        return 0

    cdef int _query_gateways(self, uint64_t rid, int64_t now) except -1:
        """One GATEWAY_STATE row per gateway heard; return how many."""
        cdef uint32_t g
        cdef int n = 0
        cdef oms_gateway_state_t* gs
        for g in range(self.n_gateways):
            if self.gw_n_status[g] == 0:
                continue
            gs = <oms_gateway_state_t*>self.reply.reserve(sizeof(oms_gateway_state_t))
            _hdr(gs, OMS_MSG_GATEWAY_STATE, sizeof(oms_gateway_state_t), 0, rid,
                 OMS_HDR_FLAG_QUERY_ROW, now)
            gs.ts_ns = self.gw_last[g].ts_ns
            gs.heard_ns = self.gw_heard_ns[g]
            gs.n_status = self.gw_n_status[g]
            gs.gateway_id = g
            gs.detail = self.gw_last[g].detail
            gs.state = self.gw_last[g].state
            n += 1
        return n

    cdef int _query_alerts(self, uint64_t rid, uint32_t account, uint64_t limit, bint every,
                           int64_t now) except -1:
        """The kept RISK_ALERT events of the sender's accounts (of ``account`` alone unless it
        is ANY_ID; ``every``: all, those of no account too), newest first, at most ``limit``
        (0: all kept); return how many rows."""
        cdef uint64_t kept = self.n_alerts if self.n_alerts < OMS_ALERTS_KEPT else OMS_ALERTS_KEPT
        cdef uint64_t k
        cdef int n = 0
        cdef oms_risk_alert_t* a
        cdef oms_risk_alert_t* row
        for k in range(kept):
            if limit and <uint64_t>n >= limit:
                break
            a = &self.alerts[(self.n_alerts - 1 - k) % OMS_ALERTS_KEPT]
            if not every and (not self.cur_allowed.has(a.account) or (
                    account != OMS_ANY_ID and a.account != account)):
                continue
            row = <oms_risk_alert_t*>self.reply.reserve(sizeof(oms_risk_alert_t))
            _hdr(row, OMS_MSG_RISK_ALERT, sizeof(oms_risk_alert_t), 0, rid,
                 OMS_HDR_FLAG_QUERY_ROW, now)  # (zeroes the record: the body is copied after)
            memcpy(<uint8_t*>row + OMS_WIRE_HEADER_SIZE, <uint8_t*>a + OMS_WIRE_HEADER_SIZE,
                   sizeof(oms_risk_alert_t) - OMS_WIRE_HEADER_SIZE)
            n += 1
        return n

    cdef void _keep_alert(self, const uint8_t* rec) noexcept:
        memcpy(&self.alerts[self.n_alerts % OMS_ALERTS_KEPT], rec, sizeof(oms_risk_alert_t))
        self.n_alerts += 1

    cdef void _keep_gateway_status(self, const uint8_t* rec, int64_t recv_ns) noexcept:
        cdef const oms_gw_status_t* st = <const oms_gw_status_t*>rec
        if st.gateway_id >= self.n_gateways:
            self.n_gw_errors += 1
            return
        memcpy(&self.gw_last[st.gateway_id], rec, sizeof(oms_gw_status_t))
        self.gw_heard_ns[st.gateway_id] = recv_ns
        self.gw_n_status[st.gateway_id] += 1

    def reference_price(self, uint32_t instrument):
        """Return ``(last, bid, ask)`` of ``instrument`` as the core holds them (raw; zeros
        when the instrument is unknown or has no price yet). Used to size signals."""
        cdef instrument_t* ins
        if instrument >= self.core.n_instruments or not self.core.instruments[instrument].active:
            return 0, 0, 0
        ins = &self.core.instruments[instrument]
        return ins.last, ins.bid, ins.ask

    def emit_event(self, bytes record, uint32_t account, bint route):
        """Add one event record built in Python (cold: admin changes) with the next sequence
        number; ``route``: also deliver it to the sessions following ``account``."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(record)
        if n < OMS_WIRE_HEADER_SIZE or n > 65535:
            raise ValueError("not a wire record")
        cdef uint8_t* p = self.wr.reserve(n)
        memcpy(p, PyBytes_AS_STRING(record), n)
        self.seq += 1
        (<oms_hdr_t*>p).seq = self.seq
        if (<oms_hdr_t*>p).msg_type == OMS_MSG_RISK_ALERT and n == sizeof(oms_risk_alert_t):
            self._keep_alert(p)  # a reconciliation difference
        self._publish(p, <uint16_t>n, account, route)
