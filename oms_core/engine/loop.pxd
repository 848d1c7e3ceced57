# EngineLoop: the engine's hot path. One object owns one OmsCore and the reused output buffers.
# A frame of wire records comes in (validated whole by wire_check_frame), every record is
# authorized, journaled and applied to the core through one entry point (c_apply), and the
# answers and events go out as records packed into frames:
#
#   reply  -> the client that sent the frame (ACK / REJECT / rows / the events of its accounts)
#   wr     -> the writer and the journal: every ACK, REJECT and event, with the event sequence
#   gw[e]  -> the gateway of exchange e: GW_NEW_ORDER / GW_CANCEL / GW_REPLACE
#
# Cold work (sessions, HELLO, the less frequent commands, queries of Python state, sockets)
# is done in Python: the cold input kinds by the handlers registered in the table ``cold``
# (``register_cold``: the server's commands, reconciliation's kinds), HELLO and GW_STATUS by
# the two callbacks below.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from bindings.wire.wire cimport (
    OMS_ALERTS_KEPT, OMS_AUDIT_SENDER_BYTES, OMS_ROLE_ADMIN, OMS_ROLE_GATEWAY,
    OMS_ROLE_PUBLISHER, OMS_ROLE_TRADER, OMS_ROLE_VIEWER, OMS_ROLE_WRITER, oms_gw_status_t,
    oms_order_update_t, oms_risk_alert_t,
)
from oms_core.bars cimport LiveBars
from oms_core.core cimport OmsCore
from oms_core.engine.idset cimport IdSet
from oms_core.journal cimport JournalStage
from oms_core.types cimport order_t


# Engine-internal input kinds (journal kinds >= 192; wire MsgTypes are below 192).
cdef enum:
    KIND_TIMER = 192              # core.on_timer: expire GTD / DAY orders
    KIND_MARK_TO_MARKET = 193     # core.mark_to_market: revalue, run the loss breakers
    KIND_START_OF_DAY = 194       # core.start_of_day
    KIND_AUDIT = 200              # an AUDIT record (payload), emitted as an event when applied

# Roles: the wire spec's (bindings.wire.spec.Role, generated into oms_wire.h).
cdef enum:
    ROLE_VIEWER = OMS_ROLE_VIEWER
    ROLE_TRADER = OMS_ROLE_TRADER
    ROLE_ADMIN = OMS_ROLE_ADMIN
    ROLE_GATEWAY = OMS_ROLE_GATEWAY
    ROLE_WRITER = OMS_ROLE_WRITER
    ROLE_PUBLISHER = OMS_ROLE_PUBLISHER


# ---------------------------------------------------------------------------------------------
# Output buffer: records packed back to back, cut into frames of at most 1 MiB / 4096 records
# ---------------------------------------------------------------------------------------------

cdef class OutBuf:
    cdef uint8_t* data
    """Owned bytes; grows (doubling) only when one batch outsizes it."""
    cdef Py_ssize_t cap
    cdef readonly Py_ssize_t n
    """Bytes used."""
    cdef Py_ssize_t frame_start
    cdef uint32_t frame_records
    cdef Py_ssize_t* ends
    """End offsets of the sealed frames."""
    cdef uint32_t n_ends
    cdef uint32_t ends_cap
    cdef readonly uint64_t n_records

    cdef uint8_t* reserve(self, Py_ssize_t size) except NULL
    cdef int append(self, const uint8_t* rec, Py_ssize_t size) except -1
    cdef void reset(self) noexcept nogil


# ---------------------------------------------------------------------------------------------
# The answer of a cold handler
# ---------------------------------------------------------------------------------------------

cdef class ColdAnswer:
    """What a cold handler answers to a client command: ACK (``code`` 0) with up to three
    order ids, or REJECT with ``code``; the client order id and account of the answer."""
    cdef readonly int code
    cdef readonly uint64_t order_id
    cdef readonly uint64_t leg2_order_id
    cdef readonly uint64_t leg3_order_id
    cdef readonly uint64_t client_order_id
    cdef readonly uint32_t account


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

cdef class EngineLoop:
    cdef readonly OmsCore core
    cdef readonly OutBuf reply
    cdef readonly OutBuf wr
    cdef readonly list gw
    """OutBuf per exchange id."""
    cdef readonly uint64_t seq
    """Engine event sequence: the last one given (gap free across ACK, REJECT and events)."""
    cdef readonly uint64_t gen_cl_ord_id
    """Counter of client order ids the engine makes itself (signals)."""
    cdef readonly JournalStage journal
    """The journal stage: every journaled input and the batch's events go to it through its
    C contract, pointers into the loop's own buffers (a NullJournal: nothing is kept)."""
    cdef bint journal_keeps
    """False for a NullJournal: each input's two virtual calls into it are skipped (about 50
    instructions an order in an engine without a journal, as in the throughput benchmark)."""
    cdef dict cold
    """Input kind -> ``handler(ts, payload)`` for the state-changing inputs the loop does not
    decode itself (MASS_CANCEL, NEW_BRACKET, NEW_OCO, SIGNAL, ADMIN, reconciliation's kinds):
    a :class:`ColdAnswer` for a client command kind (< 64), None for an internal kind.
    Filled once by ``register_cold``; deterministic (the inputs are journaled and replayed)."""
    cdef dict cold_applied
    """Input kind -> ``hook(ts, payload, answer)``, run after the kind's cold handler (one
    observer per kind, ``on_cold_applied``): reconciliation watches ADMIN there."""
    cdef public object py_command
    """Callback for HELLO (session state, no core change): ``py_command(kind, payload) -> code``."""
    cdef public object py_gateway
    """Callback for GW_STATUS records: ``py_gateway(payload)``."""
    cdef public LiveBars bars
    """Live bars fed by every applied GW_MARKET_DATA flagged TRADE (None: no bars)."""
    cdef bint live
    """False while replaying: answers are built but not journaled."""
    cdef bint dirty
    """Inputs journaled since the last commit."""
    # the client whose frame is being handled
    cdef int cur_role
    cdef readonly IdSet cur_allowed
    """The accounts the sender may act on (a gateway: its venue accounts)."""
    cdef readonly IdSet cur_strategies
    """A publisher's strategies; every other role: every strategy."""
    cdef readonly int64_t cur_exchange
    """A gateway's exchange (its market data must be of that exchange's instruments); -1:
    any (security off: the sender is not known)."""
    cdef public IdSet cur_mask
    """Accounts whose events go into the reply: the session's subscription itself (the
    loop adds to it when ``auto_subscribe``)."""
    cdef public bint auto_subscribe
    # events of this batch, for routing to the other sessions
    cdef uint32_t* route_offsets
    cdef uint16_t* route_lengths
    cdef uint32_t* route_accounts
    cdef readonly uint32_t n_routed
    """Events of this batch to route to the sessions that follow their accounts."""
    cdef uint32_t route_cap
    # counters
    cdef readonly uint64_t n_frames
    cdef readonly uint64_t n_records
    cdef readonly uint64_t n_bad_frames
    cdef readonly uint64_t n_unauthorized
    cdef readonly uint64_t n_gw_unauthorized
    """Gateway records refused: an account or instrument not of the sending gateway."""
    cdef readonly uint64_t n_wrong_direction
    cdef readonly uint64_t n_acks
    cdef readonly uint64_t n_rejects
    cdef readonly uint64_t n_gw_records
    cdef readonly uint64_t n_gw_errors
    cdef readonly uint64_t n_duplicate_retries
    cdef uint64_t* wire_errors
    # what the operator asks about (answered by the GATEWAYS and ALERTS queries)
    cdef oms_risk_alert_t alerts[OMS_ALERTS_KEPT]
    """Ring of the last RISK_ALERT events, the newest at (n_alerts - 1) % OMS_ALERTS_KEPT."""
    cdef readonly uint64_t n_alerts
    """RISK_ALERT events seen (those rebuilt by a recovery's replay too)."""
    cdef oms_gw_status_t* gw_last
    """The last GW_STATUS of each gateway id below n_gateways."""
    cdef int64_t* gw_heard_ns
    cdef uint64_t* gw_n_status
    cdef uint32_t n_gateways
    cdef int32_t reject_venue_code
    """The venue's code of the REJECT being applied, for its PROTECTION_REFUSED alert."""
    # the audit trail: one AUDIT record per client command (see _audit)
    cdef public bint audit
    """Audit the client commands (on; off only to measure what the trail costs)."""
    cdef public bint audit_queries
    """Audit QUERY commands too (off: queries change nothing and can be frequent)."""
    cdef uint8_t cur_sender[OMS_AUDIT_SENDER_BYTES]
    """Identity name of the key that sent the frame being handled (set by ``set_sender``)."""
    cdef readonly uint64_t n_audit
    cdef int ans_outcome
    """The last answer given (AuditOutcome ACK / REJECT), with its code and ids."""
    cdef int ans_code
    cdef uint64_t ans_oid
    cdef uint64_t ans_cl

    cdef int c_begin(self, int role, IdSet allowed, IdSet mask,
                     bint auto_subscribe) except -1
    """Start a batch (the fast twin of ``begin``)."""
    cdef int c_commit(self) except -1
    """Journal the batch's events and commit (the fast twin of ``commit``; free without a
    journal)."""
    cdef int c_apply(self, int kind, int64_t ts, const uint8_t* rec, Py_ssize_t n,
                     bint answer) except -1
    cdef int _new_order(self, const uint8_t* rec, int64_t ts, bint answer) except -1
    cdef int _cancel(self, const uint8_t* rec, int64_t ts, bint answer) except -1
    cdef int _replace(self, const uint8_t* rec, int64_t ts, bint answer) except -1
    cdef int _exec_report(self, const uint8_t* rec, int64_t ts) except -1
    cdef int _cold(self, int kind, int64_t ts, const uint8_t* rec, Py_ssize_t n,
                   bint answer) except -1
    cdef int _drain(self) except -1
    cdef uint8_t* _answer(self, uint16_t msg_type, uint16_t size, uint32_t account,
                          bint journaled) except NULL
    cdef int _answered(self, uint8_t* p, uint16_t size, bint journaled) except -1
    cdef int _ack(self, const uint8_t* cmd, uint64_t oid, uint64_t oid2, uint64_t oid3,
                  uint64_t cl_ord_id, uint32_t account, int64_t recv_ns,
                  bint journaled) except -1
    cdef int _reject(self, const uint8_t* cmd, int code, uint64_t cl_ord_id,
                     uint64_t order_id, uint32_t account, int64_t recv_ns,
                     bint journaled) except -1
    cdef int _protocol_error(self, uint64_t rid, uint32_t offset, int error,
                             int bad_type) except -1
    cdef uint8_t* _event(self, uint16_t msg_type, uint16_t size, uint32_t account,
                         bint route) except NULL
    cdef int _publish(self, uint8_t* rec, uint16_t size, uint32_t account,
                      bint route) except -1
    cdef int _fill_order(self, oms_order_update_t* u, order_t* o, int status) except -1
    cdef int _heartbeat(self, const uint8_t* rec) except -1
    cdef int _query(self, const uint8_t* rec) except -1
    cdef int _query_gateways(self, uint64_t rid, int64_t now) except -1
    cdef int _query_alerts(self, uint64_t rid, uint32_t account, uint64_t limit, bint every,
                           int64_t now) except -1
    cdef void _keep_alert(self, const uint8_t* rec) noexcept
    cdef void _keep_gateway_status(self, const uint8_t* rec, int64_t recv_ns) noexcept
    cdef int c_client_frame(self, const uint8_t* data, Py_ssize_t n, int64_t recv_ns) except -1
    cdef int c_gateway_frame(self, const uint8_t* data, Py_ssize_t n, int64_t recv_ns) except -1
    cdef int _journal_input(self, int kind, int64_t ts, const uint8_t* p,
                            Py_ssize_t n) except -1
    cdef int c_set_sender(self, bytes name) except -1
    """The sender of the frames that follow: its identity name, UTF-8, at most
    OMS_AUDIT_SENDER_BYTES bytes."""
    cdef int _audit(self, int mt, const uint8_t* rec, int64_t recv_ns, int outcome,
                    int code) except -1
    cdef int _authorize(self, int msg_type, const uint8_t* rec) noexcept
    cdef int _gateway_may(self, int msg_type, const uint8_t* rec) noexcept
