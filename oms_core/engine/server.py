"""The engine process: sockets, sessions, access control, timers and shutdown around the loop.

Everything here is cold code. The hot path (decode, risk, insert, encode) is
:class:`oms_core.engine.loop.EngineLoop`; this module moves frames between ZeroMQ sockets and
the loop and keeps the client sessions; the rare commands (bracket, OCO, mass cancel,
signal, admin) are :mod:`oms_core.engine.commands`. See docs/architecture.md.
"""

from __future__ import annotations

import gc
import logging
import os
import signal as _signal
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import zmq

from bindings.security import (
    DOMAIN_ROLES,
    CurveKeyPair,
    Domain,
    KeyRegistry,
    OmsAuthenticator,
    Role,
    make_curve_server,
)
from bindings.wire import records as wire
from bindings.wire.spec import (
    ANY_ID,
    AUDIT_ENGINE,
    AUDIT_INSECURE,
    AUDIT_SENDER_BYTES,
    HeaderFlag,
    MsgType,
)
from oms_core.bars import LiveBars
from oms_core.core import OmsCore
from oms_core.enums import Reject
from oms_core.journal import DURABILITY, JournalWriteError

from .commands import ColdCommands
from .config import EngineConfig
from .idset import EVERY, NOBODY, IdSet
from .kinds import KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_TIMER
from .loop import EngineLoop
from .zmqio import client_pump

log = logging.getLogger("oms.engine")

_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_DOMAIN_SOCKETS = {Domain.COMMANDS: "client commands", Domain.GATEWAY: "gateway links",
                   Domain.WRITER: "writer feed", Domain.EVENTS: "event feed",
                   Domain.SIGNALS: "signal feed"}


class BindError(OSError):
    """An endpoint could not be bound (in use, bad address); the message names it."""


def bind_endpoint(sock: zmq.Socket, endpoint: str) -> None:
    """``sock.bind(endpoint)``, or :class:`BindError` with one line naming the endpoint."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as e:
        raise BindError(f"cannot bind {endpoint}: {zmq.strerror(e.errno)}") from None

# exit status of ``python -m oms_core.engine`` when its journal cannot be written (EX_TEMPFAIL:
# a supervisor restarts it; the restart recovers exactly what was acknowledged)
EXIT_JOURNAL_FAILED = 75

NS_PER_DAY = 86_400 * 1_000_000_000
_NOBLOCK = zmq.NOBLOCK
_EVENTS = zmq.EVENTS
_POLLIN = zmq.POLLIN
_MAX_BATCH = 256  # frames taken from one socket before looking at the others
_HDR_TYPE_LEN = struct.Struct("<HH")  # msg_type, length at offset 4 of a record header


def _make_context() -> zmq.Context:
    """A context whose I/O thread runs under SCHED_BATCH (see gateways/engine_link.py): on a
    machine with few cores a send wakes the I/O thread, which would otherwise preempt the
    engine's thread in the middle of a batch. ``OMS_ZMQ_SCHED_BATCH=0`` turns it off."""
    ctx = zmq.Context()
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is not None and os.environ.get("OMS_ZMQ_SCHED_BATCH", "1") != "0":
        try:
            ctx.set(zmq.THREAD_SCHED_POLICY, policy)
        except zmq.ZMQError:
            log.debug("THREAD_SCHED_POLICY not supported")
    return ctx


_INSECURE = AUDIT_INSECURE.encode()
_ENGINE = AUDIT_ENGINE.encode()


@dataclass
class Session:
    """One client connection (a ROUTER routing id)."""

    routing_id: bytes
    name: str
    role: int
    allowed: IdSet  # the accounts the identity may act on
    mask: IdSet  # accounts whose events the session receives (its own set: the loop adds)
    last_seen_ns: int
    heartbeat_ms: int
    hello: bool = False
    next_hb_ns: int = 0
    strategies: IdSet = field(default_factory=lambda: EVERY)  # a publisher: its strategies
    audit_name: bytes = _INSECURE  # who the AUDIT records of its commands name

    def __post_init__(self) -> None:
        if self.name:
            self.audit_name = audit_name(self.name)


def audit_name(name: str) -> bytes:
    """An identity name as AUDIT records hold it (UTF-8, cut at a character boundary)."""
    b = name.encode("utf-8")
    if len(b) <= AUDIT_SENDER_BYTES:
        return b
    return b[:AUDIT_SENDER_BYTES].decode("utf-8", "ignore").encode("utf-8")


class Engine:
    """The engine: one OmsCore, one single-threaded loop, the sockets around it.

    Parameters
    ----------
    core : OmsCore
        The state (built from the configuration by :func:`oms_core.engine.config.build_core`).
    journal : object, optional
        ``append_input``, ``append_event``, ``commit``, ``close``: an
        :class:`oms_core.journal.Journal` (or a wrapper of one), or a
        :class:`~oms_core.engine.journal_mem.MemoryJournal` in tests.
    config : EngineConfig, optional
        Endpoints, accounts, strategies; defaults for everything not given.
    """

    # serve clients through oms_core.engine.zmqio (libzmq directly); False (or the env var
    # OMS_ENGINE_NATIVE_IO=0) keeps the pure pyzmq path, also used where libzmq is not found
    native_io: bool = os.environ.get("OMS_ENGINE_NATIVE_IO", "1") != "0"

    def __init__(self, core: OmsCore, journal: Any = None,
                 config: EngineConfig | None = None) -> None:
        self.core = core
        self.cfg = config or EngineConfig()
        self.journal = journal
        self.loop = EngineLoop(core, self.cfg.max_exchanges, journal)
        self._day: int | None = None  # UTC day of the last start-of-day check
        self.commands = ColdCommands(self)
        self.commands.register(self.loop)
        self.loop.py_command = self._py_command
        self.loop.py_gateway = self._on_gateway_status
        self.loop.audit_queries = self.cfg.audit_queries
        # OMS_ENGINE_AUDIT=0 leaves the audit trail out: only to measure what it costs
        if os.environ.get("OMS_ENGINE_AUDIT", "1") == "0":
            self.loop.audit = False
            log.warning("AUDIT TRAIL OFF (OMS_ENGINE_AUDIT=0): commands are not audited")
        self.strategies = {s.id: s for s in self.cfg.strategies}
        self.strategy_enabled = {s.id: True for s in self.cfg.strategies}
        self.cod_accounts = frozenset(self.cfg.cancel_on_disconnect())
        self.configured_accounts = frozenset(int(a["id"]) for a in self.cfg.accounts)
        self._peer_sets: dict[Any, IdSet] = {}  # (identity, its ids) -> IdSet
        self.sessions: dict[bytes, Session] = {}
        self._cur: Session | None = None
        self._pump: Any = None
        self._stopping = False
        self._running = False
        self.journal_error: OSError | None = None
        self.ctx: zmq.Context | None = None
        self.endpoint = ""
        self.counters = {"writer_dropped": 0, "client_dropped": 0, "gateway_queued": 0,
                         "journal_syncs_timer": 0,
                         "sessions_expired": 0, "cod_mass_cancels": 0, "bad_envelopes": 0,
                         "refused_unknown_key": 0, "pub_dropped": 0,
                         "bad_signal_frames": 0, "refused_gateway_frames": 0,
                         "refused_signal_frames": 0}
        self._gw_pending: dict[int, deque[bytes]] = {}
        # reconciliation with the gateways (oms_core/engine/reconcile.py Reconciler): at start
        # and with every new gateway process; None: never
        self.reconciler: Any = None
        # signals: one answer row per client, sent to the publisher before its
        # reply; recent reference prices per instrument (sampled at mark-to-market) for the
        # volatility estimates of the sizing rules
        self._answers: list[bytes] = []
        self._closes: dict[int, deque[int]] = {}  # a replay's bar closes (_sample_closes)
        # live bars of every strategy bar interval, built by the loop from each trade it
        # applies (one series per interval and instrument, shared by its strategies)
        self.bars: LiveBars | None = None
        if self.cfg.oms.strategies:
            self.bars = LiveBars(
                (s.bar_interval_s * 1_000_000_000 for s in self.cfg.oms.strategies.values()),
                max(self.cfg.oms.ids.instruments.values(), default=-1) + 1)
        self.loop.bars = self.bars
        # every engine applies the reconciliation inputs, so that replaying a journal in any
        # engine gives the same events as the run that wrote it
        from oms_core.engine.reconcile import register_recon_handlers

        self.recon = register_recon_handlers(self.loop, self.core)

    # ------------------------------------------------------------------ contract
    def apply_input(self, kind: int, ts: int, payload: bytes) -> None:
        """Apply one journaled input with answers and gateway sends suppressed (recovery)."""
        self.loop.apply_input(kind, ts, bytes(payload), True)

    def replay(self, inputs: Any) -> int:
        """Feed ``(kind, ts, payload)`` inputs to :meth:`apply_input`; return how many."""
        n = 0
        for kind, ts, payload in inputs:
            self.apply_input(kind, ts, payload)
            n += 1
        return n

    # ------------------------------------------------------------------ sockets
    def bind(self, context: zmq.Context | None = None) -> None:
        """Create and bind every socket (call once, before :meth:`run`)."""
        cfg = self.cfg
        self.ctx = context or _make_context()
        ctx = self.ctx
        self.registry: KeyRegistry | None = None
        # the venue accounts of the gateway whose frame is being handled (security on)
        self.gw_sender_accounts: frozenset[int] | None = None
        self.gw_sender: Any = None
        self._monitors: list[tuple[str, zmq.Socket]] = []
        self.refused_peers: dict[str, int] = {}  # ZAP domain -> handshakes refused
        self._signals_again_at = 0.0  # monotonic: connect the signal SUB again (0: no)
        self.auth: OmsAuthenticator | None = None
        self.router = ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 500)
        self.router.setsockopt(zmq.SNDHWM, 1_000_000)
        self.router.setsockopt(zmq.RCVHWM, 1_000_000)
        self.server_keys: CurveKeyPair | None = None
        if cfg.security_on:
            from oms_core import security  # the full configuration's [security] keys

            keys: CurveKeyPair = security.server_keys(cfg.oms)
            self.registry = security.registry(cfg.oms)
            self.auth = OmsAuthenticator(ctx, self.registry, domains=DOMAIN_ROLES)
            self.auth.start()
            self.server_keys = keys
            make_curve_server(self.router, keys, Domain.COMMANDS)
            self._watch(self.router, Domain.COMMANDS)
            self.server_public = keys.public
        bind_endpoint(self.router, cfg.client)
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.pub = self._bind(zmq.PUB, cfg.public, 100_000, Domain.EVENTS)
        self.writer = self._bind(zmq.PUSH, cfg.writer, cfg.writer_hwm, Domain.WRITER)
        self.gw_events = self._bind(zmq.PULL, cfg.gateway_events, 1_000_000, Domain.GATEWAY)
        self.gw_md = self._bind(zmq.SUB, cfg.gateway_md, 1_000_000, Domain.GATEWAY)
        if self.gw_md is not None:
            self.gw_md.setsockopt(zmq.SUBSCRIBE, b"")
        # publishers PUB their signals to every shard; this engine SUBscribes and
        # acts only for its own clients (its core holds only them)
        self.sig_sub: zmq.Socket | None = None
        if cfg.oms.engine.signals:
            self.sig_sub = ctx.socket(zmq.SUB)
            self.sig_sub.setsockopt(zmq.LINGER, 0)
            self.sig_sub.setsockopt(zmq.RCVHWM, 100_000)
            self.sig_sub.setsockopt(zmq.SUBSCRIBE, b"")
            if self.server_keys is not None:  # the connecting side is the CURVE server
                make_curve_server(self.sig_sub, self.server_keys, Domain.SIGNALS)
                self._watch(self.sig_sub, Domain.SIGNALS)
            self.sig_sub.connect(cfg.oms.engine.signals)
        self.gw_orders: dict[int, zmq.Socket] = {}
        for g in cfg.gateways:
            s = self._bind(zmq.PUSH, g.orders, 1_000_000, Domain.GATEWAY)
            assert s is not None
            self.gw_orders[g.exchange] = s
            self._gw_pending[g.exchange] = deque()
        self.endpoints = {
            "client": self.endpoint,
            **{name: sock.getsockopt_string(zmq.LAST_ENDPOINT)
               for name, sock in (("public", self.pub), ("writer", self.writer),
                                  ("gateway_events", self.gw_events),
                                  ("gateway_md", self.gw_md)) if sock is not None},
            **{f"gateway_orders_{e}": s.getsockopt_string(zmq.LAST_ENDPOINT)
               for e, s in self.gw_orders.items()},
        }

    def _watch(self, sock: zmq.Socket, domain: str) -> None:
        """Count the peers refused at the handshake on ``sock`` (no key, a key of no
        registered peer or of a role not of ``domain``): a socket monitor, read by the
        timer (:meth:`_count_refusals`)."""
        mon = sock.get_monitor_socket(_HANDSHAKE_FAILED)
        self._monitors.append((domain, mon))

    def _connect_signals_again(self) -> None:
        if not self._signals_again_at or time.monotonic() < self._signals_again_at:
            return
        self._signals_again_at = 0.0
        assert self.sig_sub is not None
        ep = self.cfg.oms.engine.signals
        self.sig_sub.disconnect(ep)
        self.sig_sub.connect(ep)

    def _count_refusals(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        for domain, mon in self._monitors:
            while mon.poll(0):
                try:
                    recv_monitor_message(mon, zmq.NOBLOCK)
                except zmq.Again:
                    break
                n = self.refused_peers[domain] = self.refused_peers.get(domain, 0) + 1
                if domain == Domain.SIGNALS:
                    # the SUB connects: after a refused handshake libzmq does not connect
                    # again, so a keyless squatter on the endpoint would silence the feed
                    self._signals_again_at = time.monotonic() + 1.0
                if n & (n - 1) == 0:  # 1, 2, 4, 8 ...: loud, never a flood
                    log.warning("SECURITY refused a peer without a valid key on %s (%s): "
                                "%d so far", domain, _DOMAIN_SOCKETS.get(domain, domain), n)

    def _bind(self, kind: int, endpoint: str | list[str] | None, hwm: int, domain: str
              ) -> zmq.Socket | None:
        """A socket bound to ``endpoint`` (several: one socket on all of them); with
        security on, a CURVE server whose peers must hold a key of a role of ``domain``."""
        if not endpoint:
            return None
        assert self.ctx is not None
        s = self.ctx.socket(kind)
        if self.server_keys is not None:
            make_curve_server(s, self.server_keys, domain)
            self._watch(s, domain)
        s.setsockopt(zmq.LINGER, 500)
        if kind in (zmq.PUB, zmq.PUSH):
            s.setsockopt(zmq.SNDHWM, hwm)
        else:
            s.setsockopt(zmq.RCVHWM, hwm)
        for ep in [endpoint] if isinstance(endpoint, str) else endpoint:
            bind_endpoint(s, ep)
        return s

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT: stop accepting, answer what is in flight, flush, close."""
        def stop(signum: int, frame: Any) -> None:
            self._stopping = True
        _signal.signal(_signal.SIGTERM, stop)
        _signal.signal(_signal.SIGINT, stop)

    def stop(self) -> None:
        self._stopping = True

    @property
    def stopping(self) -> bool:
        """A stop was asked for (a signal or :meth:`stop`)."""
        return self._stopping

    # ------------------------------------------------------------------ main loop
    def run(self, ready: Any = None) -> None:
        """Serve until :meth:`stop` (or a signal); then shut down cleanly."""
        cfg = self.cfg
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        for s in (self.gw_events, self.gw_md):
            if s is not None:
                poller.register(s, zmq.POLLIN)
        router, gw_events, gw_md = self.router, self.gw_events, self.gw_md
        sig_sub = self.sig_sub
        if sig_sub is not None:
            poller.register(sig_sub, zmq.POLLIN)
        timer_ns = cfg.timer_ms * 1_000_000
        mtm_ns = cfg.mark_to_market_ms * 1_000_000
        hb_ns = cfg.heartbeat_ms * 1_000_000
        now = time.time_ns()
        next_timer, next_mtm, next_hb = now + timer_ns, now + mtm_ns, now + hb_ns
        others = [s for s in (gw_events, gw_md, sig_sub) if s is not None]
        pump = self._pump = client_pump(
            self, self.loop, router, others, self.writer, self.gw_orders, self._gw_pending,
            self.sessions, self.counters, self._answers, self.registry,
            cfg.writer_delay_us) if self.native_io else None
        self._running = True
        # the steady state allocates little; keep the cyclic collector out of the hot path
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 100, 100)
        if ready is not None and not self._stopping:
            ready()
        log.info("engine serving on %s", self.endpoints)
        # group durability: when traffic stops, the last commits are synced within group_us
        # (the wait is cut short for it), not left to the next message
        sync_due = getattr(self.journal, "sync_due_in_ns", None)
        sync_if_due = getattr(self.journal, "sync_if_due", None)
        try:
            while not self._stopping:
                wait_ns = 50_000_000
                if sync_due is not None:
                    due = sync_due()
                    if due >= 0:
                        if due == 0:
                            sync_if_due()
                            self.counters["journal_syncs_timer"] += 1
                        else:
                            wait_ns = min(wait_ns, due)
                if pump is not None:
                    # served in C until a timer is due or another socket has input (bits)
                    deadline = min(next_timer, next_hb, next_mtm if mtm_ns > 0 else next_hb,
                                   time.time_ns() + wait_ns)
                    bits = pump.serve(deadline)
                    if bits:
                        for i, sock in enumerate(others, 1):
                            if bits >> i & 1:
                                if sock is sig_sub:
                                    self._drain_signals()
                                else:
                                    self._drain_gateway(sock)
                    ready_socks = None
                else:
                    ready_socks = poller.poll(max(1, wait_ns // 1_000_000))
                if ready_socks:
                    for sock, _ in ready_socks:
                        if sock is router:
                            self._drain_clients()
                        elif sock is gw_events or sock is gw_md:
                            self._drain_gateway(sock)
                        elif sock is sig_sub:
                            self._drain_signals()
                now = time.time_ns()
                if now >= next_timer:
                    next_timer = now + timer_ns
                    self.start_day_if_new(now)
                    if self.loop.timer_due(now):
                        self._internal(KIND_TIMER, now)
                    self._retry_gateways()
                    if self.reconciler is not None and self.reconciler.wants_tick:
                        self.reconciler.tick()
                    self._check_sessions(now)
                    if self._monitors:
                        self._count_refusals()
                        self._connect_signals_again()
                if mtm_ns > 0 and now >= next_mtm:
                    next_mtm = now + mtm_ns
                    self._internal(KIND_MARK_TO_MARKET, now)
                if now >= next_hb:
                    next_hb = now + hb_ns
                    self._heartbeats(now)
        except JournalWriteError as e:
            self.journal_failed(e)
        finally:
            self._shutdown()

    def journal_failed(self, e: OSError) -> None:
        """The journal could not be written: alert once and stop serving.

        The commit group that failed was applied in memory but never acknowledged (answers,
        gateway orders and writer copies go out only after the commit), so the engine must not
        go on from this state: it stops without applying anything more and a restart recovers
        exactly the journaled (= acknowledged) state. See docs/journal.md, "Disk full"."""
        self.journal_error = e
        self._stopping = True
        seq = getattr(self.journal, "committed_seq", 0)
        log.error("ALERT engine: %s. Trading stopped: nothing after journal seq %d was "
                  "acknowledged; the engine exits with status %d and a restart recovers every "
                  "acknowledged event once the journal directory is writable again",
                  e, seq, EXIT_JOURNAL_FAILED)

    def _drain_clients(self) -> None:
        if self._pump is not None:
            self._pump.drain_clients()
            return
        router = self.router
        secure = self.registry is not None
        events = router.getsockopt
        for _ in range(_MAX_BATCH):
            # ask before reading: a recv that raises Again costs more than the question
            if not events(_EVENTS) & _POLLIN:
                return
            try:
                parts = router.recv_multipart(_NOBLOCK, copy=not secure)
            except zmq.Again:
                return
            if len(parts) != 2:
                self.counters["bad_envelopes"] += 1
                continue
            if secure:
                self._client_frame(parts[0].bytes, parts[1].buffer, parts[1])
            else:
                self._client_frame(parts[0], parts[1], None)

    def _session(self, rid: bytes, zframe: Any, now: int) -> Session | None:
        user = None
        if self.registry is not None:
            try:
                user = zframe.get("User-Id")
            except (zmq.ZMQError, KeyError):
                user = ""
        return self._session_of(rid, user, now)

    def _session_of(self, rid: bytes, user: str | None, now: int) -> Session | None:
        """The session of routing id ``rid`` (made on first sight); ``user``: the User-Id of
        the message when security is on. None: the sender's key is not (or no longer)
        registered."""
        s = self.sessions.get(rid)
        if self.registry is None:
            if s is None:
                s = Session(rid, "", int(Role.ADMIN), EVERY,
                            IdSet(capacity=self.cfg.max_accounts), now,
                            self.cfg.heartbeat_ms)
                self.sessions[rid] = s
            return s
        ident = self.registry.by_name(user) if user else None
        if ident is None:
            self.counters["refused_unknown_key"] += 1
            return None
        if s is None or s.name != ident.name:
            allowed = EVERY if ident.role == Role.ADMIN else IdSet(ident.accounts)
            mask = IdSet() if ident.role == Role.ADMIN else allowed.copy()
            s = Session(rid, ident.name, int(ident.role), allowed, mask, now,
                        self.cfg.heartbeat_ms)
            if ident.role == Role.PUBLISHER:
                s.strategies = IdSet(ident.strategies)
            self.sessions[rid] = s
        return s

    def _client_frame(self, rid: bytes, frame: Any, zframe: Any) -> None:
        now = time.time_ns()
        s = self._session(rid, zframe, now)
        if s is None:
            return
        s.last_seen_ns = now
        loop = self.loop
        self._cur = s
        loop.begin(s.role, s.allowed, s.mask, self.registry is None)
        if s.role == Role.PUBLISHER:
            loop.limit_peer(s.strategies, -1)
        loop.set_sender(s.audit_name)
        loop.on_client_frame(frame, now)
        s.mask = loop.cur_mask
        self._flush(rid)

    def _flush(self, rid: bytes | None) -> None:
        """Journal, then send: replies, gateway orders, writer copies, other sessions."""
        loop = self.loop
        loop.commit()
        if self._answers:
            # per-client answers of a SIGNAL (journaled above), ahead of the reply
            if rid is not None:
                try:
                    self.router.send_multipart((rid, b"".join(self._answers)), _NOBLOCK)
                except zmq.ZMQError:
                    self.counters["client_dropped"] += 1
            self._answers.clear()
        if rid is not None and loop.reply.n:
            for f in loop.reply.frames():
                try:
                    self.router.send_multipart((rid, f), _NOBLOCK)
                except zmq.Again:
                    self.counters["client_dropped"] += 1
                except zmq.ZMQError:
                    self.counters["client_dropped"] += 1
        for ex, frames in (loop.gateway_frames() if loop.gw_pending else ()):
            sock = self.gw_orders.get(ex)
            if sock is None:
                self.counters["gateway_queued"] += len(frames)
                continue
            pending = self._gw_pending[ex]
            for f in frames:
                if pending:
                    pending.append(f)
                    continue
                try:
                    sock.send(f, _NOBLOCK)
                except zmq.Again:
                    pending.append(f)
                    self.counters["gateway_queued"] += 1
        if self.writer is not None and loop.wr.n:
            if self._pump is not None:  # one queue for every writer record, in order
                self._pump.queue_writer()
            else:
                for f in loop.wr.frames():
                    try:
                        self.writer.send(f, _NOBLOCK)
                    except zmq.Again:
                        self.counters["writer_dropped"] += 1
        if loop.n_routed:
            self._route_to_others(rid)

    def _route_to_others(self, rid: bytes | None) -> None:
        """Send this batch's events to the other sessions following their accounts."""
        loop = self.loop
        if loop.n_routed:
            for srid, s in self.sessions.items():
                if srid == rid or not loop.routes_to(s.mask):
                    continue
                for f in loop.select(s.mask):
                    try:
                        self.router.send_multipart((srid, f), _NOBLOCK)
                    except zmq.ZMQError:
                        self.counters["client_dropped"] += 1

    def _drain_signals(self) -> None:
        """Signals published to every shard: frames of SIGNAL records only (anything else in
        a frame refuses the whole frame); the answers go to the journal and the writer."""
        assert self.sig_sub is not None
        loop = self.loop
        secure = self.registry is not None
        ident = None
        for _ in range(_MAX_BATCH):
            try:
                zframe = self.sig_sub.recv(_NOBLOCK, copy=not secure)
            except zmq.Again:
                return
            if secure:
                ident = self._sender(zframe)
                if ident is None or ident.role not in (Role.PUBLISHER, Role.ADMIN):
                    self.counters["refused_signal_frames"] += 1
                    continue
                frame = zframe.bytes
            else:
                frame = zframe
            off, n = 0, len(frame)
            ok = n >= 24
            while ok and off + 8 <= n:
                mt, length = _HDR_TYPE_LEN.unpack_from(frame, off + 4)
                ok = mt == MsgType.SIGNAL and length > 0
                off += length
            if not ok or off != n:
                self.counters["bad_signal_frames"] += 1
                continue
            self._cur = None
            if ident is None:
                loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
                loop.set_sender(_INSECURE)
            else:  # a publisher: its strategies only (each record is checked)
                loop.begin(int(Role.PUBLISHER), EVERY, NOBODY, False)
                if ident.role == Role.PUBLISHER:
                    loop.limit_peer(self._peer_set(ident, ident.strategies), -1)
                loop.set_sender(audit_name(ident.name))
            loop.on_client_frame(frame, time.time_ns())
            self._flush(None)

    def _retry_gateways(self) -> None:
        for ex, pending in self._gw_pending.items():
            sock = self.gw_orders[ex]
            while pending:
                try:
                    sock.send(pending[0], _NOBLOCK)
                except zmq.Again:
                    break
                pending.popleft()

    def _sender(self, zframe: Any) -> Any:
        """The identity of the peer that sent ``zframe`` (security on); None: unknown."""
        try:
            name = zframe.get("User-Id")
        except (zmq.ZMQError, KeyError):
            return None
        assert self.registry is not None
        return self.registry.by_name(name) if name else None

    def _rows_of(self, ident: Any, frame: bytes) -> bool:
        """Every reconciliation answer row of a gateway frame is of the sender's venue
        accounts (checked here: the rows bypass the loop, which checks the other records)."""
        if wire.check_frame_py(frame)[1] != 0:
            return True  # malformed: the loop counts it
        recs = wire.decode_frame(frame)
        if all(getattr(r, "account", None) in ident.accounts for r in recs
               if r.flags & HeaderFlag.QUERY_ROW or r.msg_type in (
                   MsgType.GW_BALANCE, MsgType.GW_RECONCILE_END)):
            return True
        self.counters["refused_gateway_frames"] += 1
        return False

    def _begin_gateway(self, ident: Any = None) -> None:
        """Start a loop batch for a gateway frame: as the sending gateway (its accounts, its
        exchange) when security is on, else as the trusted link it is then."""
        ident = ident if ident is not None else self.gw_sender
        loop = self.loop
        if ident is None:
            self.gw_sender_accounts = None
            loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
            return
        self.gw_sender_accounts = ident.accounts
        loop.begin(int(Role.GATEWAY), self._peer_set(ident, ident.accounts), NOBODY, False)
        loop.limit_peer(EVERY, ident.exchange)

    def _peer_set(self, ident: Any, ids: frozenset[int]) -> IdSet:
        """The IdSet of a peer's accounts or strategies, made once per identity (a gateway's
        or a publisher's frames come often; an identity is immutable)."""
        key = (ident, ids)
        got = self._peer_sets.get(key)
        if got is None:
            got = self._peer_sets[key] = IdSet(ids, frozen=True)
        return got

    def _drain_gateway(self, sock: zmq.Socket) -> None:
        loop = self.loop
        rc = self.reconciler
        secure = self.registry is not None
        for _ in range(_MAX_BATCH):
            try:
                zframe = sock.recv(_NOBLOCK, copy=not secure)
            except zmq.Again:
                return
            if secure:
                ident = self._sender(zframe)
                if ident is None or ident.role != Role.GATEWAY:
                    self.counters["refused_gateway_frames"] += 1
                    continue
                frame = zframe.bytes
            else:
                frame = zframe
            self.gw_sender = ident if secure else None
            if rc is not None and rc.active and sock is self.gw_events:
                if secure and not self._rows_of(ident, frame):
                    continue
                if rc.on_frame(frame):
                    continue  # a reconciliation answer row
            self._begin_gateway(ident if secure else None)
            loop.on_gateway_frame(frame, time.time_ns())
            self._flush(None)
            if sock is self.gw_md and self.pub is not None:
                try:  # market data summary for everyone
                    self.pub.send(frame, _NOBLOCK)
                except zmq.Again:
                    self.counters["pub_dropped"] += 1

    def start_day_if_new(self, now: int) -> None:
        """Start a new trading day (core.start_of_day, journaled) when the UTC day of ``now``
        is not the core's: the daily-loss limit counts from midnight UTC. A restart on the same
        day keeps the day it recovered (its start is in the core's state)."""
        day = now // NS_PER_DAY
        if day == self._day:
            return
        self._day = day
        if self.core.day_start_ts() // NS_PER_DAY != day:
            self._internal(KIND_START_OF_DAY, now)

    def _internal(self, kind: int, now: int, payload: bytes = b"") -> None:
        loop = self.loop
        loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
        loop.apply_input(kind, now, payload, False)
        self._flush(None)

    # ------------------------------------------------------------------ sessions
    def _heartbeats(self, now: int) -> None:
        hb = wire.encode("HEARTBEAT", 0, 0, now, 0, last_seq=self.loop.seq, echo_ns=0)
        if self.pub is not None:
            try:
                self.pub.send(hb, _NOBLOCK)
            except zmq.Again:
                self.counters["pub_dropped"] += 1
        for rid, s in self.sessions.items():
            if s.hello and s.heartbeat_ms > 0 and now >= s.next_hb_ns:
                s.next_hb_ns = now + s.heartbeat_ms * 1_000_000
                try:
                    self.router.send_multipart((rid, hb), _NOBLOCK)
                except zmq.ZMQError:
                    self.counters["client_dropped"] += 1

    def _check_sessions(self, now: int) -> None:
        expired = [s for s in self.sessions.values()
                   if now - s.last_seen_ns > 3 * max(s.heartbeat_ms, 1) * 1_000_000]
        for s in expired:
            del self.sessions[s.routing_id]
            self.counters["sessions_expired"] += 1
            if not s.hello:
                continue  # a one-shot command ends quietly: only a HELLO arms the switch
            live: set[int] = set()
            for o in self.sessions.values():
                if o.hello:
                    live.update(o.mask)
            for account in sorted(set(s.mask) & self.cod_accounts - live):
                log.warning("client %r silent: canceling the open orders of account %d",
                            s.name, account)
                rec = wire.encode("MASS_CANCEL", 0, 0, now, 0, account=account,
                                  strategy=ANY_ID, instrument=ANY_ID, side=0)
                self.loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
                self.loop.set_sender(_ENGINE)
                self.loop.apply_input(int(MsgType.MASS_CANCEL), now, rec, False)
                self.loop.audit_command(rec, now)
                self._flush(None)
                self.counters["cod_mass_cancels"] += 1

    def _py_command(self, kind: int, payload: bytes) -> int:
        """HELLO: set the session's subscription (never a state change of the core)."""
        s = self._cur
        if s is None:
            return int(Reject.UNKNOWN_ACCOUNT)
        rec = wire.decode(payload)
        wanted = set(rec.accounts[: rec.n_accounts])
        if not wanted <= self.configured_accounts or not all(a in s.allowed for a in wanted):
            return int(Reject.UNKNOWN_ACCOUNT)
        if not wanted and s.role != Role.ADMIN:  # no list: every account it may use
            wanted = {a for a in self.configured_accounts if a in s.allowed}
        s.mask = IdSet(wanted)
        self.loop.cur_mask = s.mask
        s.hello = True
        if rec.heartbeat_ms:
            s.heartbeat_ms = int(rec.heartbeat_ms)
        return 0

    def _on_gateway_status(self, payload: bytes) -> None:
        # (the loop keeps the last one of each gateway for the GATEWAYS query)
        if self.reconciler is not None:
            self.reconciler.on_status(payload)
        if self.pub is not None:
            try:
                self.pub.send(payload, _NOBLOCK)
            except zmq.Again:
                self.counters["pub_dropped"] += 1

    def _sample_closes(self) -> None:
        """Append each instrument's last price to the closes: a replay calls this once per
        bar time of its data."""
        for iid in self.cfg.oms.ids.instruments.values():
            last = self.loop.reference_price(iid)[0]
            if last > 0:
                self._closes.setdefault(iid, deque(maxlen=1024)).append(last)

    # ------------------------------------------------------------------ shutdown
    def _shutdown(self) -> None:
        """Answer what already arrived, flush the journal, close every socket."""
        log.info("engine stopping")
        try:
            # after a journal failure nothing more is applied: it could not be journaled
            deadline = time.monotonic() + (2.0 if self.journal_error is None else -1.0)
            try:
                while time.monotonic() < deadline:
                    before = self.loop.n_frames + self.loop.n_gw_records
                    self._drain_clients()
                    for s in (self.gw_events, self.gw_md):
                        if s is not None:
                            self._drain_gateway(s)
                    if self.loop.n_frames + self.loop.n_gw_records == before:
                        break
            except JournalWriteError as e:  # the disk filled during the last drain
                self.journal_failed(e)
            self._retry_gateways()
            if self.journal is not None:
                if self.journal_error is None:
                    self.journal.commit()
                self.journal.close()
        finally:
            self._running = False
            if self._pump is not None:
                self._pump.flush_writer()
                self.counters["writer_frames"] = self._pump.n_writer_frames
                self.counters["native_messages"] = self._pump.n_messages
                self.counters["session_lookups"] = self._pump.n_session_lookups
            self._pump = None  # holds raw socket handles: gone before the sockets close
            if self._monitors:
                self._count_refusals()
                if self.refused_peers:
                    log.warning("SECURITY peers refused at the handshake: %s",
                                self.refused_peers)
            for _domain, mon in self._monitors:
                mon.close(0)
            for name in ("router", "pub", "writer", "gw_events", "gw_md", "sig_sub"):
                s = getattr(self, name, None)
                if s is not None:
                    s.close(500)
            for s in getattr(self, "gw_orders", {}).values():
                s.close(500)
            if getattr(self, "auth", None) is not None:
                self.auth.stop()
            if self.ctx is not None:
                self.ctx.term()
        log.info("engine stopped: %s", self.stats())

    def stats(self) -> dict[str, Any]:
        lp = self.loop
        return {
            "frames": lp.n_frames, "records": lp.n_records, "acks": lp.n_acks,
            "rejects": lp.n_rejects, "bad_frames": lp.n_bad_frames,
            "unauthorized": lp.n_unauthorized, "wrong_direction": lp.n_wrong_direction,
            "gw_records": lp.n_gw_records, "gw_errors": lp.n_gw_errors,
            "duplicate_retries": lp.n_duplicate_retries, "alerts": lp.n_alerts, "seq": lp.seq,
            "gw_unauthorized": lp.n_gw_unauthorized,
            "refused_handshakes": dict(getattr(self, "refused_peers", {})),
            "journal_durability": _durability_name(self.journal),
            "wire_errors": lp.wire_error_counts(), **self.counters,
        }


def _durability_name(journal: Any) -> str | None:
    inner = getattr(journal, "journal", journal)  # a SnapshottingJournal wraps the journal
    code = getattr(inner, "durability", None)
    return next((name for name, c in DURABILITY.items() if c == code), None)




__all__ = ["Engine", "Session"]
