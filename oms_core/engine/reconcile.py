"""Reconciliation after a restart: gate trading, ask every gateway, adopt what it answers.

Cold code, run at start (after :func:`oms_core.engine.startup.recover_engine`) and again for
every gateway process that says hello while the engine runs::

    gate_after_restart(engine, res)                   # global HALT until every gateway
    engine.bind()                                     # answered (or an admin RESUMEs)
    reconcile_after_restart(engine, res)              # asks, waits, lifts the gate
    engine.run(ready)

Every engine registers reconciliation's input kinds (:func:`register_recon_handlers`, at
construction), so that replaying a journal in any engine gives the events of the run that
wrote it.
"""

from __future__ import annotations

import functools
import logging
import struct
import time
from typing import Any

from bindings.wire import records as wire
from bindings.wire.spec import (
    ANY_ID,
    AdminAction,
    ExecType,
    HeaderFlag,
    MsgType,
    Scope,
)
from oms_core import recovery
from oms_core.enums import KillMode, OrderStatus

log = logging.getLogger("oms.engine.reconcile")


GATE_MARK = 0x5245434F4E  # ADMIN ``value`` of the gate's own KILL / RESUME ("RECON")


class ReconState:
    """What the reconciliation gate knows; rebuilt by replay (inputs are observed)."""

    def __init__(self) -> None:
        self.gate_owned = False  # the global HALT in force was set by the gate, not an admin
        self.gated = False  # this run gated trading and has not lifted it yet
        self.overridden: dict[str, Any] | None = None
        self.reports: dict[tuple[int, int], recovery.ReconReport] = {}  # (exchange, account)
        self.missing: list[int] = []  # exchanges whose last reconciliation failed
        self.failures: dict[int, str] = {}  # ... and why


def register_recon_handlers(loop: Any, core: Any) -> ReconState:
    """Register reconciliation's input kinds in ``loop``'s cold table (at engine construction,
    so that every replay of a journal handles them, with or without
    :func:`~oms_core.engine.startup.recover_engine`).

    KIND_RECON_ALERT emits its RISK_ALERT record as an engine event (so replay gives it the
    same event sequence number); KIND_RECON_BALANCE sets an account's balance of one asset
    to the venue's total and emits a BALANCE_UPDATE event; KIND_RECON_DONE /
    KIND_ADMIN_OVERRIDE change nothing in the core. Applied ADMIN KILL / RESUME at GLOBAL
    scope are observed to know whether the global HALT in force is the gate's own
    (``value == GATE_MARK``) or an operator's. Return the state those observations build.
    """
    st = ReconState()

    def recon_alert(ts: int, payload: bytes) -> None:
        loop.emit_event(payload, wire.decode(payload).account, True)

    def recon_balance(ts: int, payload: bytes) -> None:
        account, asset, total = recovery.adopt_balance(core, payload)
        _total, locked = core.balance(account, asset)
        loop.emit_event(wire.encode("BALANCE_UPDATE", total=total, free=total - locked,
                                    locked=locked, event_ns=ts, account=account,
                                    asset=asset), account, True)

    def noted(ts: int, payload: bytes) -> None:
        """A decision kept in the journal; the core does not change."""

    def admin_applied(ts: int, payload: bytes, answer: Any) -> None:
        if answer.code != 0:
            return
        rec = wire.decode(payload)
        if rec.scope == Scope.GLOBAL and rec.action == AdminAction.KILL:
            st.gate_owned = rec.value == GATE_MARK
        elif rec.scope == Scope.GLOBAL and rec.action == AdminAction.RESUME:
            if st.gated and rec.value != GATE_MARK:
                st.overridden = {"ts": ts}
                log.warning("ADMIN OVERRIDE: trading resumed by an admin RESUME GLOBAL "
                            "before reconciliation completed (journaled)")
            st.gate_owned = False
            st.gated = False

    loop.register_cold(recovery.KIND_RECON_ALERT, recon_alert)
    loop.register_cold(recovery.KIND_RECON_BALANCE, recon_balance)
    loop.register_cold(recovery.KIND_RECON_DONE, noted)
    loop.register_cold(recovery.KIND_ADMIN_OVERRIDE, noted)
    loop.on_cold_applied(int(MsgType.ADMIN), admin_applied)
    return st


def _admin(engine: Any, action: int, ts: int) -> None:
    rec = wire.encode("ADMIN", 0, 0, ts, 0, action=action, scope=int(Scope.GLOBAL),
                      kill_mode=int(KillMode.HALT) if action == AdminAction.KILL else 0,
                      account=0, strategy=0, value=GATE_MARK)
    _live_apply(engine, int(MsgType.ADMIN), ts, rec, audited=True)


def _live_apply(engine: Any, kind: int, ts: int, payload: bytes, audited: bool = False
                ) -> None:
    """Apply one input through the engine's live path: journaled, events sent after commit;
    ``audited``: a command the engine gives itself, in the audit trail as AUDIT_ENGINE's."""
    engine.apply_internal(kind, ts, payload, audited)


def gate_after_restart(engine: Any, res: recovery.RecoveryResult, ts: int | None = None) -> bool:
    """Close trading after a restart from a non-empty journal; return True when closed.

    The gate is the global kill switch: a journaled ``ADMIN KILL GLOBAL HALT`` input marked
    ``value = GATE_MARK`` (cancels and queries still work). :func:`reconcile_after_restart`
    lifts it (a journaled ``ADMIN RESUME GLOBAL``, marked too) once every gateway answered;
    an admin's own ``ADMIN RESUME GLOBAL`` (journaled like every command) overrides it. A
    global kill an operator set before the crash is left as it was (reconciliation still
    runs but does not lift it); a gate left by a crash during reconciliation is kept.
    """
    st = engine.recon
    if res.last_seq == 0:
        return False
    if engine.core.risk.global_kill != 0:
        st.gated = st.gate_owned
        return st.gated
    _admin(engine, int(AdminAction.KILL), time.time_ns() if ts is None else ts)
    st.gated = True
    log.warning("trading gated after restart: global HALT until every gateway has answered "
                "reconciliation (or an admin sends RESUME GLOBAL)")
    return True


def _instruments_by_exchange(engine: Any) -> dict[int, dict[int, tuple[int, int]]]:
    """exchange id -> {instrument id: (base asset, quote asset)}, from the configuration."""
    out: dict[int, dict[int, tuple[int, int]]] = {}
    oms = engine.cfg.oms
    for i in oms.instruments.values():
        out.setdefault(int(oms.exchanges[i.exchange].id), {})[int(i.id)] = (
            int(oms.assets[i.base].id), int(oms.assets[i.quote].id))
    return out


AnswerKey = tuple[int, int] | int
"""An answer's key: (exchange, account), or the exchange alone (one account per gateway)."""


def _exchange_of(key: AnswerKey) -> int:
    return key[0] if isinstance(key, tuple) else key


def _balance_views(answers: dict[Any, dict[str, Any]], accounts: dict[Any, int],
                   insts: dict[int, dict[int, tuple[int, int]]], missing: list[int]
                   ) -> dict[Any, tuple[dict[int, int], set[int], bool]]:
    """Per answer (key :data:`AnswerKey`): the balances, traded assets and adopt flag its
    GatewayView carries.

    The engine keeps one balance per account and asset across venues, so an account's
    balances are compared once, with the sum of what its venues report, on the view of its
    last exchange (the others carry none). An asset traded at one of the account's venues
    that did not report it, or at a venue that did not answer, is left out (a partial sum
    would be a false difference); with a venue missing nothing is adopted.
    """
    missing_assets = {a for ex in missing for pair in insts.get(ex, {}).values() for a in pair}
    by_account: dict[int, list[AnswerKey]] = {}
    for key in sorted(accounts):
        by_account.setdefault(accounts[key], []).append(key)
    out: dict[Any, tuple[dict[int, int], set[int], bool]] = {}
    for exs in by_account.values():
        total: dict[int, int] = {}
        traded: set[int] = set()
        skip = set(missing_assets)
        for ex in exs:
            bal = answers[ex]["balances"]
            mine = {a for pair in insts.get(_exchange_of(ex), {}).values() for a in pair}
            traded |= mine
            skip |= mine - set(bal)
            for asset, v in bal.items():
                total[asset] = total.get(asset, 0) + v
        for asset in skip & set(total):
            log.info("reconciliation: account %d asset %d not reported by every venue that "
                     "trades it: balance not compared", accounts[exs[-1]], asset)
        for ex in exs[:-1]:
            out[ex] = ({}, set(), False)
        out[exs[-1]] = ({a: v for a, v in total.items() if a not in skip}, traded - skip,
                        not missing)
    return out


def _records(frame: bytes) -> list[tuple[int, int, int, bytes]]:
    """(msg_type, flags, request_id, raw record) of each record of a checked frame."""
    out = []
    off = 0
    while off + 32 <= len(frame):
        _magic, _ver, flags, mt, length, _seq, rid = _HDR.unpack_from(frame, off)
        if length < 32:
            break
        out.append((mt, flags, rid, frame[off:off + length]))
        off += length
    return out


_HDR = struct.Struct("<HBBHHQQ")
_ANSWER_TYPES = {int(MsgType.GW_EXEC_REPORT), int(MsgType.GW_BALANCE),
                 int(MsgType.GW_RECONCILE_END)}


class _Answer:
    """What one venue account of a gateway answered so far."""

    def __init__(self) -> None:
        self.orders: list[recovery.VenueOrder] = []
        self.fills: list[recovery.VenueFill] = []
        self.balances: dict[int, int] = {}
        self.end: Any = None


class _Request:
    """One GW_RECONCILE in flight to one exchange's gateway, and its answers so far: the
    gateway answers once per venue account it trades (``expected``; without that table the
    first complete answer ends the request)."""

    def __init__(self, exchange: int, rid: int, since_ns: int, at_start: bool,
                 live_before: set[int], expected: list[int]) -> None:
        self.exchange = exchange
        self.rid = rid
        self.since_ns = since_ns
        self.at_start = at_start  # the engine restarted: compare balances, close PENDING_NEW
        self.live_before = live_before  # orders live when it was asked (mid-run: acked ones)
        self.expected = expected
        self.sent_at = 0.0  # monotonic; 0 = not sent yet (no gateway connected)
        self.answers: dict[int, _Answer] = {a: _Answer() for a in expected}
        self.rows = 0  # answer rows received
        self.hello_at = 0.0  # monotonic: a new gateway process said hello after it was sent

    def answer(self, account: int) -> _Answer:
        a = self.answers.get(account)
        if a is None:
            a = self.answers[account] = _Answer()
        return a

    @property
    def complete(self) -> bool:
        if self.expected:
            return all(self.answers[a].end is not None for a in self.expected)
        return any(a.end is not None for a in self.answers.values())


class Reconciler:
    """Reconciliation with the gateways, one request per exchange at a time.

    Asked for every exchange after an engine restart (:meth:`request_all`) and again for one
    exchange whenever a new gateway process says hello (:meth:`on_status`: a GW_STATUS whose
    header ``seq`` starts again), while the engine runs. The answer rows (this request's id,
    QUERY_ROW) are taken out of the gateway stream (:meth:`on_frame`) and, at
    GW_RECONCILE_END, applied through the engine's live journaled path
    (:func:`oms_core.recovery.reconcile`): missed fills booked, orders not open at the venue
    closed, RECONCILIATION_DIFFERENCE alerts emitted. A gateway silent for ``timeout_s`` (or
    whose answer is incomplete) gets one RECON_NO_ANSWER alert per failure streak and is asked
    again every ``timeout_s`` and when it next says hello.

    The restart gate (:func:`gate_after_restart`) lifts once every exchange asked at start
    answered completely. Mid-run, orders sent but not acknowledged when the request went out
    are left alone (the venue may not list them yet), and balances are not compared (fills
    move them while the answer is assembled).
    """

    def __init__(self, engine: Any, timeout_s: float = 10.0, lookback_s: float = 300.0,
                 on_report: Any = None, unknown_after_s: float = 10.0) -> None:
        self.engine = engine
        self.st = engine.recon
        self.timeout_s = timeout_s
        self.lookback_ns = int(lookback_s * 1e9)
        self.on_report = on_report  # called with the report dict after each verdict
        self.pending: dict[int, _Request] = {}
        self.by_rid: dict[int, int] = {}
        self.unreconciled: set[int] = set()  # asked at start, not answered completely yet
        # exchange -> (account, venue balances) of the start answers, until all are in
        self.start_balances: dict[int, tuple[int, dict[int, int]]] | None = None
        self.status_seq: dict[int, int] = {}  # gateway id -> header seq of its last GW_STATUS
        self.last_heard_ns: dict[int, int] = {}
        self.retired: dict[int, float] = {}  # superseded or failed request id -> forget at
        # orders UNKNOWN (submit in doubt) that the gateway has not resolved after this long
        # are reconciled on the timer; younger ones are left out (the venue may still take
        # a request stamped until its recvWindow ends)
        self.unknown_after_s = unknown_after_s
        self.unknown_since = 0.0
        self.n_requests = 0
        # exchange -> (monotonic time, since_ns, at_start): a failed reconciliation is asked
        # again after timeout_s (a venue that timed out once must not halt trading for good)
        self.again: dict[int, tuple[float, int, bool]] = {}
        self._rid = time.time_ns() & 0xFFFFFFFFFF00
        # orders of an earlier engine process are the start reconciliation's (it closes
        # what the venue does not hold); only this process's can be lost by a gateway
        self.started_ns = time.time_ns()

    # -- asking
    def request_all(self, since_ns: int) -> None:
        """Ask every exchange (engine start); trading stays gated until all answered."""
        self.start_balances = {}
        for ex in sorted(self.engine.gw_orders):
            self.unreconciled.add(ex)
            self.request(ex, since_ns, at_start=True)

    def request(self, ex: int, since_ns: int, at_start: bool = False) -> None:
        """Ask ``ex`` (a request still pending for it is superseded)."""
        old = self.pending.get(ex)
        if old is not None:
            self._retire(old)
            at_start = at_start or old.at_start
        self._rid += 0x100
        rid = self._rid | (ex & 0xFF)
        live: set[int] = set()
        core = self.engine.core
        settled = time.time_ns() - int(self.unknown_after_s * 1e9)
        for account in self._accounts():
            for oid in core.live_orders(account):
                o = core.order(oid)
                if o is None:
                    continue
                if at_start or (o["status"] != OrderStatus.PENDING_NEW and (
                        o["status"] != OrderStatus.UNKNOWN or o["ts_sent"] <= settled)):
                    live.add(int(oid))
        venue_accounts = getattr(self.engine.cfg, "venue_accounts", None) or {}
        self.pending[ex] = _Request(ex, rid, max(0, since_ns), at_start, live,
                                    sorted(venue_accounts.get(ex, [])))
        self.by_rid[rid] = ex
        self.n_requests += 1
        self._send(self.pending[ex])

    def _accounts(self) -> list[int]:
        # the shard's clients (derived from the configuration, or a bare core's accounts)
        ids = [int(a["id"]) for a in self.engine.cfg.accounts]
        out = []
        for a in sorted(set(ids)):
            try:
                self.engine.core.live_orders(a)
            except KeyError:
                continue
            out.append(a)
        return out

    def _send(self, req: _Request) -> None:
        import zmq

        sock = self.engine.gw_orders.get(req.exchange)
        if sock is None:
            return
        msg = wire.encode("GW_RECONCILE", req.rid, 0, time.time_ns(), 0,
                          since_ns=req.since_ns, account=ANY_ID, exchange=req.exchange)
        try:
            sock.send(msg, zmq.NOBLOCK)
            req.sent_at = time.monotonic()
        except zmq.Again:
            pass  # no gateway connected yet: PUSH has no peer to queue for

    def on_status(self, payload: bytes) -> None:
        """A GW_STATUS: a new gateway process (its sequence starts again) is asked."""
        seq = _HDR.unpack_from(payload, 0)[5]
        rec = wire.decode(payload)
        gid = int(rec.gateway_id)
        last = self.status_seq.get(gid)
        self.status_seq[gid] = seq
        now = time.time_ns()
        heard = self.last_heard_ns.get(gid, now)
        self.last_heard_ns[gid] = now
        if (last is None and seq > 1) or (last is not None and seq > last):
            return  # the process we heard before (or one that started before this engine)
        ex = gid if gid in self.engine.gw_orders else None
        if ex is None:
            return
        req = self.pending.get(ex)
        if req is not None and req.sent_at:
            # sent while this process may already have been connected: give it time to
            # answer before asking again (tick), rather than make it answer twice
            req.hello_at = req.hello_at or time.monotonic()
            return
        if req is not None:  # not sent yet: tick sends it; hellos again and again ask no more
            self._in_doubt(ex, now)
            return
        log.warning("gateway %d (exchange %d) started: reconciling with it", gid, ex)
        self._in_doubt(ex, now)
        self.request(ex, min(heard, now) - self.lookback_ns)

    def _in_doubt(self, ex: int, before_ns: int) -> None:
        """Orders sent to ``ex``'s gateway before its new process said hello and never
        answered: the process that died may have placed them or lost them. They become
        UNKNOWN, which the timer's reconciliation resolves by asking the venue (else they
        would wait in PENDING_NEW for an answer nobody will send)."""
        core = self.engine.core
        instruments = _instruments_by_exchange(self.engine).get(ex, {})
        ts = time.time_ns()
        sender = getattr(self.engine, "gw_sender_accounts", None)  # security on: its accounts
        for account in self._accounts():
            if sender is not None and account not in sender:
                continue
            for oid in core.live_orders(account):
                o = core.order(oid)
                if (o is None or o["status"] != OrderStatus.PENDING_NEW or o["hold"]
                        or not self.started_ns <= o["ts_received"] < before_ns
                        or o["instrument"] not in instruments):
                    continue
                log.warning("order %d was sent to the gateway of exchange %d before it "
                            "restarted: in doubt until the venue is asked", oid, ex)
                _live_apply(self.engine, MsgType.GW_EXEC_REPORT, ts, wire.encode(
                    "GW_EXEC_REPORT", order_id=int(oid), exec_type=ExecType.UNKNOWN_ORDER,
                    gw_recv_ns=ts, account=account))

    # -- answers
    def on_frame(self, frame: bytes) -> bool:
        """Take the answer rows out of one gateway frame; True when the frame was handled
        here (the other records of it passed to the engine's loop one by one)."""
        if not self.active or wire.check_frame_py(frame)[1] != 0:
            return False
        recs = _records(frame)
        if not any((rid in self.by_rid or rid in self.retired) and mt in _ANSWER_TYPES
                   for mt, _f, rid, _r in recs):
            return False
        for mt, flags, rid, raw in recs:
            if rid in self.retired and mt in _ANSWER_TYPES:
                continue
            ex = self.by_rid.get(rid)
            if ex is None or mt not in _ANSWER_TYPES or (
                    mt == MsgType.GW_EXEC_REPORT and not flags & HeaderFlag.QUERY_ROW):
                _normal_gateway_record(self.engine, raw)
                continue
            req = self.pending[ex]
            req.rows += 1
            r = wire.decode(raw)
            a = req.answer(int(r.account))
            if mt == MsgType.GW_RECONCILE_END:
                a.end = r
                if r.code != 0:
                    self._fail(req, r)
                elif req.complete:
                    self._finish(req)
            elif mt == MsgType.GW_BALANCE:
                a.balances[int(r.asset)] = int(r.total)
            elif r.exec_type == ExecType.STATUS:
                a.orders.append(recovery.VenueOrder(int(r.order_id), int(r.exch_order_id),
                                                    int(r.cum_qty), int(r.leaves_qty)))
            elif r.exec_type == ExecType.FILL:
                a.fills.append(recovery.VenueFill(
                    int(r.order_id), int(r.trade_id), int(r.last_qty), int(r.last_price),
                    int(r.fee), int(r.fee_asset), int(r.liquidity), int(r.exch_ts_ns)))
        return True

    @property
    def wants_tick(self) -> bool:
        """:meth:`tick` has work: a request, or orders in doubt to reconcile on the timer."""
        return bool(self.pending or self.retired or self.unknown_since or self.again
                    or self.engine.core.unknown_orders)

    def tick(self) -> None:
        """Send what could not be sent; give up on requests older than the timeout; reconcile
        every exchange when orders stayed UNKNOWN for ``unknown_after_s``."""
        now = time.monotonic()
        if not self.engine.core.unknown_orders:
            self.unknown_since = 0.0
        elif not self.unknown_since:
            self.unknown_since = now
        elif now - self.unknown_since >= self.unknown_after_s:
            self.unknown_since = now  # and again after another period while unresolved
            log.warning("%d orders in doubt (UNKNOWN) for %.0f s: reconciling",
                        self.engine.core.unknown_orders, self.unknown_after_s)
            for ex in sorted(self.engine.gw_orders):
                if ex not in self.pending:
                    self.request(ex, time.time_ns() - self.lookback_ns)
        for rid in [r for r, t in self.retired.items() if t < now]:
            del self.retired[rid]
        for ex, (at, since_ns, at_start) in list(self.again.items()):
            if now >= at and ex not in self.pending:
                del self.again[ex]
                log.warning("exchange %d: asking again for the reconciliation that failed", ex)
                self.request(ex, since_ns, at_start)
        for req in list(self.pending.values()):
            if not req.sent_at:
                self._send(req)
            if req.hello_at and not req.rows and now - req.hello_at > self.timeout_s / 2:
                # went to the process that died: ask the new one
                log.warning("exchange %d: a new gateway process did not answer the pending "
                            "reconciliation; asking it again", req.exchange)
                self.request(req.exchange, req.since_ns, req.at_start)
                continue
            if req.sent_at and now - req.sent_at > self.timeout_s:
                self._fail(req, None)

    def expire_all(self) -> None:
        """Every request still pending has failed (the start-up wait is over)."""
        for req in list(self.pending.values()):
            self._fail(req, None)

    # -- verdicts
    def _retire(self, req: _Request) -> None:
        self.pending.pop(req.exchange, None)
        self.by_rid.pop(req.rid, None)
        # late rows of a request no longer waited for are dropped, not applied as live
        # reports, for a while
        self.retired[req.rid] = time.monotonic() + 2 * self.timeout_s

    @property
    def active(self) -> bool:
        """Gateway frames must pass :meth:`on_frame` (a request pending or just retired)."""
        return bool(self.pending or self.retired)

    def _fail(self, req: _Request, end: Any) -> None:
        self._retire(req)
        ex = req.exchange
        st = self.st
        self.again[ex] = (time.monotonic() + self.timeout_s, req.since_ns, req.at_start)
        first = ex not in st.missing
        if first:
            st.missing.append(ex)
        failed = sorted(a for a, ans in req.answers.items()
                        if ans.end is None or ans.end.code != 0) or [0]
        why = "no answer" if end is None else f"incomplete answer (code {end.code})"
        st.failures[ex] = f"{why} (accounts {', '.join(map(str, failed))})"
        if first:  # one alert per failure streak and venue account
            ts = time.time_ns()
            log.error("ALERT reconciliation with exchange %d failed: %s within %.1f s%s", ex,
                      st.failures[ex], self.timeout_s, "; trading stays halted until it "
                      f"answers (asked again every {self.timeout_s:g} s and at its next hello) "
                      "or an admin sends RESUME GLOBAL" if st.gated else "")
            for account in failed:
                ans = req.answers.get(account)
                code = -1 if ans is None or ans.end is None else int(ans.end.code)
                _live_apply(self.engine, recovery.KIND_RECON_ALERT, ts, recovery.alert_record(
                    account, ex, 0, recovery.RECON_NO_ANSWER, code, ts))
        self._report()

    def _finish(self, req: _Request) -> None:
        """Every venue account of ``req`` answered completely: reconcile each."""
        self._retire(req)
        self.again.pop(req.exchange, None)
        engine, st, ex = self.engine, self.st, req.exchange
        insts = _instruments_by_exchange(engine)
        apply = functools.partial(_live_apply, engine)
        for account, ans in sorted(req.answers.items()):
            if ans.end is None:  # an account no table expected and that did not answer
                continue
            try:
                live = [o for o in engine.core.live_orders(account)
                        if int(o) in req.live_before]
            except KeyError:
                log.error("gateway of exchange %d trades account %d, unknown here", ex,
                          account)
                self._fail(req, ans.end)
                return
            # balances: compared once every exchange asked at start answered (an account's
            # balance is the sum over its venues); never mid-run
            view = recovery.GatewayView(account, set(insts.get(ex, {})), ans.orders,
                                        ans.fills, {}, set(), False)
            rep = recovery.reconcile(engine.core, view, time.time_ns(), apply, None, live,
                                     in_doubt_rejected=not req.at_start)
            st.reports[(ex, account)] = rep
            if self.start_balances is not None:
                self.start_balances[(ex, account)] = (account, ans.balances)
            log.warning("reconciled exchange %d account %d: %d open at the venue, %d fills "
                        "seen, %d booked, %d closed", ex, account, len(ans.orders),
                        len(ans.fills), len(rep.booked_fills), len(rep.closed_unknown))
            for text in rep.alerts:
                log.warning("ALERT reconciliation: %s", text)
            for text in rep.notes:
                log.info("reconciliation: %s", text)
        if ex in st.missing:
            st.missing.remove(ex)
        st.failures.pop(ex, None)
        self.unreconciled.discard(ex)
        if self.start_balances is not None and not self.unreconciled:
            self._reconcile_balances(self.start_balances, insts)
            self.start_balances = None
        if (not self.unreconciled and not st.missing and st.gated and st.gate_owned
                and engine.core.risk.global_kill != 0):
            _admin(engine, int(AdminAction.RESUME), time.time_ns())
            log.warning("reconciliation complete: trading resumed")
        self._report()

    def _reconcile_balances(self, answered: dict[tuple[int, int], tuple[int, dict[int, int]]],
                            insts: dict[int, dict[int, tuple[int, int]]]) -> None:
        """The venues' balances against the engine's, every (exchange, account) answer at
        hand."""
        views = _balance_views({k: {"balances": b} for k, (_a, b) in answered.items()},
                               {k: a for k, (a, _b) in answered.items()}, insts, [])
        ts = time.time_ns()
        for key, (account, _b) in sorted(answered.items()):
            balances, traded, adopt = views[key]
            view = recovery.GatewayView(account, set(insts.get(key[0], {})), [], [], balances,
                                        traded, adopt)
            rep = recovery.reconcile(self.engine.core, view, ts,
                                     functools.partial(_live_apply, self.engine), None, [])
            into = self.st.reports.setdefault(key, recovery.ReconReport())
            for name in ("balance_diffs", "adopted", "untracked", "alerts", "notes"):
                getattr(into, name).extend(getattr(rep, name))

    def report(self) -> dict[str, Any]:
        """What the ``RECONCILED`` line says: the verdicts so far (per exchange, its venue
        accounts together, and which accounts answered) and whether trading is halted, with
        the reason per exchange that failed."""
        st = self.st
        reports: dict[str, dict[str, list[Any]]] = {}
        accounts: dict[str, list[int]] = {}
        for (ex, account), r in sorted(st.reports.items()):
            out = reports.setdefault(str(ex), {"booked_fills": [], "closed": [],
                                               "balance_diffs": [], "adopted": []})
            out["booked_fills"] += r.booked_fills
            out["closed"] += [o for o, _ in r.closed_unknown]
            out["balance_diffs"] += r.balance_diffs
            out["adopted"] += r.adopted
            accounts.setdefault(str(ex), []).append(account)
        return {
            "ok": not st.missing and not self.unreconciled,
            "missing": sorted(st.missing), "why": {str(k): v for k, v in st.failures.items()},
            "halted": self.engine.core.risk.global_kill != 0,
            "reports": reports, "accounts": accounts}

    def _report(self) -> None:
        if self.on_report is not None and not self.pending:
            self.on_report(self.report())


def reconcile_after_restart(engine: Any, res: recovery.RecoveryResult,
                            timeout_s: float = 10.0, lookback_s: float = 300.0,
                            now_ns: int | None = None) -> bool:
    """Reconcile with every gateway (after :meth:`Engine.bind`, before :meth:`Engine.run`).

    Asks every gateway (trades since the journal's last input minus ``lookback_s``) through
    ``engine.reconciler`` (a :class:`Reconciler`, made here when missing) and waits up to
    ``timeout_s`` for the answers, applying other gateway frames that arrive meanwhile as
    usual. When every gateway answered completely and the gate is the reconciliation's own,
    a journaled ``ADMIN RESUME GLOBAL`` lifts it; otherwise trading stays halted (logged,
    alert) until a late gateway answers (asked again at its hello while the engine runs) or
    an admin sends RESUME. Return True when every gateway answered.
    """
    rc = getattr(engine, "reconciler", None)
    if rc is None:
        rc = engine.reconciler = Reconciler(engine, timeout_s, lookback_s)
    st = rc.st
    now = time.time_ns() if now_ns is None else now_ns
    rc.request_all((res.last_input_ts or now) - int(lookback_s * 1e9))
    sink = getattr(engine, "sink", None)
    deadline = time.monotonic() + timeout_s
    on_report, rc.on_report = rc.on_report, None  # one verdict at the end of the wait
    try:
        # every socket is served meanwhile (trading is gated): clients get their answers,
        # the answer rows go to the reconciler, each gateway frame is checked by its sender
        while rc.pending and sink is not None and not engine.stopping and (
                time.monotonic() < deadline):
            rc.tick()
            sink.serve(time.time_ns() + 20_000_000)
        if engine.stopping:  # asked to stop while waiting: no verdict (the next start asks)
            return False
        rc.expire_all()
    finally:
        rc.on_report = on_report
    return not st.missing and not rc.unreconciled


def _normal_gateway_record(engine: Any, raw: bytes) -> None:
    # a record of a frame the sink is handling: as the gateway that sent that frame
    engine.sink.apply_gateway_frame(raw)


__all__ = ["GATE_MARK", "ReconState", "Reconciler", "gate_after_restart",
           "reconcile_after_restart", "register_recon_handlers"]
