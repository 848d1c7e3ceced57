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
import time
from collections import deque
from typing import Any

import zmq

from bindings.libzmq import share_with_extensions
from bindings.security import (
    DOMAIN_ROLES,
    CurveKeyPair,
    Domain,
    KeyRegistry,
    OmsAuthenticator,
    make_curve_server,
)
from bindings.wire import records as wire
from oms_core.bars import LiveBars
from oms_core.core import OmsCore
from oms_core.enums import Reject
from oms_core.journal import DURABILITY, Journal, JournalStage, JournalWriteError

from .commands import ColdCommands
from .config import EngineConfig
from .entry import apply_internal
from .kinds import KIND_MARK_TO_MARKET, KIND_START_OF_DAY, KIND_TIMER
from .loop import EngineLoop
from .sessions import Session, SessionTable

share_with_extensions()  # before loading zmqio, whose zmq_* symbols are pyzmq's libzmq
from .zmqio import EngineSink  # noqa: E402

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


class Engine:
    """The engine: one OmsCore, one single-threaded loop, the sockets around it.

    Parameters
    ----------
    core : OmsCore
        The state (built from the configuration by :func:`oms_core.engine.config.build_core`).
    journal : JournalStage, optional
        The loop's journal stage: an :class:`oms_core.journal.Journal`, a
        :class:`~oms_core.journal.MemoryJournal` in tests; None keeps nothing (a
        :class:`~oms_core.journal.NullJournal`).
    config : EngineConfig, optional
        Endpoints, accounts, strategies; defaults for everything not given.
    """

    def __init__(self, core: OmsCore, journal: JournalStage | None = None,
                 config: EngineConfig | None = None) -> None:
        self.core = core
        self.cfg = config or EngineConfig()
        self.loop = EngineLoop(core, self.cfg.max_exchanges, journal)
        self._day: int | None = None  # UTC day of the last start-of-day check
        self.commands = ColdCommands(self)
        self.commands.register(self.loop)
        self.loop.py_command = _no_session  # the sink answers HELLO once there are sockets
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
        # the ZeroMQ sink (oms_core/engine/zmqio.pyx), made by bind: every socket's traffic
        # and the client sessions; None: no sockets (recovery, tools, tests of the loop)
        self.sink: EngineSink | None = None
        self._stop_asked = False
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
        self._reconciler: Any = None
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
        self.endpoints = {
            "client": self.endpoint,
            **{name: sock.getsockopt_string(zmq.LAST_ENDPOINT)
               for name, sock in (("public", self.pub), ("writer", self.writer),
                                  ("gateway_events", self.gw_events),
                                  ("gateway_md", self.gw_md)) if sock is not None},
            **{f"gateway_orders_{e}": s.getsockopt_string(zmq.LAST_ENDPOINT)
               for e, s in self.gw_orders.items()},
        }
        table = SessionTable(self.registry, self.configured_accounts, self.cod_accounts,
                             cfg.max_accounts, cfg.heartbeat_ms, self.counters)
        self.sink = EngineSink(
            self.loop, table, self.router, pub=self.pub, writer=self.writer,
            gateway_events=self.gw_events, market_data=self.gw_md, signals=self.sig_sub,
            gateway_orders=self.gw_orders, registry=self.registry, counters=self.counters,
            answers=self._answers, writer_delay_us=cfg.writer_delay_us)
        self.sink.stopping = self._stop_asked
        self.sink.reconciler = self.reconciler

    @property
    def sessions(self) -> dict[bytes, Session]:
        """The client sessions by routing id (kept by the sink; empty before :meth:`bind`)."""
        return self.sink.sessions.by_routing_id if self.sink is not None else {}

    @property
    def reconciler(self) -> Any:
        """Reconciliation with the gateways (oms_core/engine/reconcile.py Reconciler): at
        start and with every new gateway process; None: never."""
        return self._reconciler

    @reconciler.setter
    def reconciler(self, rc: Any) -> None:
        self._reconciler = rc
        if self.sink is not None:  # its answer rows are taken off the gateway feed
            self.sink.reconciler = rc

    @property
    def gw_sender_accounts(self) -> frozenset[int] | None:
        """The venue accounts of the gateway whose frame is being handled (security on)."""
        sender = self.sink.gateway_sender if self.sink is not None else None
        return sender.accounts if sender is not None else None

    @property
    def _stopping(self) -> bool:
        return self._stop_asked

    @_stopping.setter
    def _stopping(self, value: bool) -> None:
        self._stop_asked = value
        if self.sink is not None:  # serve() returns
            self.sink.stopping = value

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
        sink = self.sink
        assert sink is not None, "bind() first"
        timer_ns = cfg.timer_ms * 1_000_000
        mtm_ns = cfg.mark_to_market_ms * 1_000_000
        hb_ns = cfg.heartbeat_ms * 1_000_000
        now = time.time_ns()
        next_timer, next_mtm, next_hb = now + timer_ns, now + mtm_ns, now + hb_ns
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
        journal = self.journal
        try:
            while not self._stopping:
                wait_ns = 50_000_000
                due = journal.sync_due_in_ns()
                if due >= 0:
                    if due == 0:
                        journal.sync_if_due()
                        self.counters["journal_syncs_timer"] += 1
                    else:
                        wait_ns = min(wait_ns, due)
                # every socket served in C until a timer is due
                sink.serve(min(next_timer, next_hb, next_mtm if mtm_ns > 0 else next_hb,
                               time.time_ns() + wait_ns))
                now = time.time_ns()
                if now >= next_timer:
                    next_timer = now + timer_ns
                    self.start_day_if_new(now)
                    if self.loop.timer_due(now):
                        self.apply_internal(KIND_TIMER, now)
                    sink.retry_gateways()
                    if self.reconciler is not None and self.reconciler.wants_tick:
                        self.reconciler.tick()
                    sink.expire_sessions(now)
                    if self._monitors:
                        self._count_refusals()
                        self._connect_signals_again()
                if mtm_ns > 0 and now >= next_mtm:
                    next_mtm = now + mtm_ns
                    self.apply_internal(KIND_MARK_TO_MARKET, now)
                if now >= next_hb:
                    next_hb = now + hb_ns
                    sink.heartbeats(now, wire.encode("HEARTBEAT", 0, 0, now, 0,
                                                     last_seq=self.loop.seq, echo_ns=0))
        except JournalWriteError as e:
            self.journal_failed(e)
        finally:
            self._shutdown()

    @property
    def journal(self) -> JournalStage:
        """The loop's journal stage (a NullJournal when the engine journals nothing)."""
        return self.loop.journal

    def journal_failed(self, e: OSError) -> None:
        """The journal could not be written: alert once and stop serving.

        The commit group that failed was applied in memory but never acknowledged (answers,
        gateway orders and writer copies go out only after the commit), so the engine must not
        go on from this state: it stops without applying anything more and a restart recovers
        exactly the journaled (= acknowledged) state. See docs/journal.md, "Disk full"."""
        self.journal_error = e
        self._stopping = True
        seq = self.journal.committed_seq
        log.error("ALERT engine: %s. Trading stopped: nothing after journal seq %d was "
                  "acknowledged; the engine exits with status %d and a restart recovers every "
                  "acknowledged event once the journal directory is writable again",
                  e, seq, EXIT_JOURNAL_FAILED)

    def start_day_if_new(self, now: int) -> None:
        """Start a new trading day (core.start_of_day, journaled) when the UTC day of ``now``
        is not the core's: the daily-loss limit counts from midnight UTC. A restart on the same
        day keeps the day it recovered (its start is in the core's state)."""
        day = now // NS_PER_DAY
        if day == self._day:
            return
        self._day = day
        if self.core.day_start_ts() // NS_PER_DAY != day:
            self.apply_internal(KIND_START_OF_DAY, now)

    def apply_internal(self, kind: int, now: int, payload: bytes = b"",
                       audited: bool = False) -> None:
        """Apply one input the engine gives itself (journaled), then send what it caused;
        ``audited``: in the audit trail as the engine's own command."""
        if self.sink is not None:
            self.sink.apply_internal(kind, now, payload, audited)
        else:  # no sockets: nothing to send
            apply_internal(self.loop, kind, now, payload, audited)
            self.loop.commit()

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
                    if self.sink is not None:
                        self.sink.drain_all()
                    if self.loop.n_frames + self.loop.n_gw_records == before:
                        break
            except JournalWriteError as e:  # the disk filled during the last drain
                self.journal_failed(e)
            if self.sink is not None:
                self.sink.retry_gateways()
            if self.journal_error is None:
                self.journal.commit()
            self.journal.close()  # the snapshot trigger's last snapshot, then the file
        finally:
            self._running = False
            if self.sink is not None:
                self.sink.flush_writer()
                self.counters["writer_frames"] = self.sink.n_writer_frames
                self.counters["native_messages"] = self.sink.n_messages
                self.counters["gateway_frames"] = self.sink.n_gateway_frames
                self.counters["session_lookups"] = self.sink.n_session_lookups
            self.sink = None  # holds raw socket handles: gone before the sockets close
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


def _no_session(kind: int, payload: bytes) -> int:
    return int(Reject.UNKNOWN_ACCOUNT)


def _durability_name(journal: JournalStage) -> str | None:
    if not isinstance(journal, Journal):
        return None
    return next((name for name, c in DURABILITY.items() if c == journal.durability), None)




__all__ = ["Engine", "Session"]
