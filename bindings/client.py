"""Python clients of the OMS engine: blocking :class:`OmsClient`, asyncio :class:`AsyncOmsClient`.

Both talk to the engine's ROUTER over one DEALER socket with the binary records of
``bindings.wire`` (see docs/protocol.md). Every command carries a fresh request id; the
engine's answer (ACK, REJECT, HEARTBEAT, query rows + QUERY_RESULT, PROTOCOL_ERROR) echoes it
and is matched back to the call. Everything else that arrives (order updates, fills,
positions, ...) is an event of this client and is queued for :meth:`OmsClient.events`.

Given the OMS configuration (``config=`` an ``OmsConfig`` or the TOML path) the client speaks
in names and decimals: ``client="alice"``, ``strategy="trend"``, ``instrument="BTCUSDT"``,
prices and quantities as decimal strings or ``Decimal`` (converted exactly at the
instrument's precisions; :func:`bindings.decimals.to_raw`), and :meth:`OmsClient.signal`
answers one :class:`ClientAnswer` per client. Raw int ids and raw int64 amounts are accepted
everywhere too (``precisions={instrument: (price_decimals, qty_decimals)}`` without a
configuration). docs/client.md is the guide.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import zmq
import zmq.asyncio

from bindings.decimals import to_raw
from bindings.names import Names, Number
from bindings.security import CurveClientKeys
from bindings.wire.records import CODECS, FrameBuilder, WireFormatError, iter_frame
from bindings.wire.spec import (
    ANY_ID,
    GW_SILENT_AFTER_MS,
    AdminAction,
    GatewayState,
    HeaderFlag,
    MsgType,
    QueryKind,
    Scope,
    SignalMode,
    WireError,
)
from oms_core.enums import (
    REJECT_REASONS,
    VENUE_REASONS,
    Alert,
    KillMode,
    Limit,
    OrderFlag,
    OrderType,
    ProtectAction,
    Reject,
    Side,
    TimeInForce,
)

_WEIGHT_DIGITS = 6  # TARGET_WEIGHT travels in parts per million of the balance

# ---------------------------------------------------------------------------------------------
# Results and errors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """The engine accepted a command."""

    request_id: int
    cmd_type: MsgType
    order_id: int = 0
    leg2_order_id: int = 0
    leg3_order_id: int = 0
    client_order_id: int = 0
    account: int = 0
    recv_ns: int = 0
    ack_ns: int = 0
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Rejected:
    """The engine refused a command; ``reason`` is the text of ``code``."""

    request_id: int
    cmd_type: MsgType
    code: Reject
    reason: str
    client_order_id: int = 0
    order_id: int = 0
    account: int = 0
    ok: bool = False

    def __str__(self) -> str:
        return f"{getattr(self.code, 'name', self.code)} ({self.reason})"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows (decoded records) of a query answer, and its result code."""

    request_id: int
    kind: QueryKind
    code: Reject
    rows: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == Reject.OK


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One of the engine's recent risk alerts (a row of :meth:`OmsClient.alerts`); ``text``
    says what happened in words."""

    event_ns: int
    alert: Alert | int
    account: int
    strategy: int
    instrument: int
    order_id: int
    a: int
    b: int
    text: str

    def __str__(self) -> str:
        return f"{getattr(self.alert, 'name', self.alert)}: {self.text}"


@dataclass(frozen=True, slots=True)
class GatewayRow:
    """The last status a gateway sent the engine (a row of :meth:`OmsClient.gateways`).
    ``age_s`` is how long before the answer it was heard: a gateway repeats its status every
    second, so one ``silent`` for longer may be gone, whatever its last ``state`` said."""

    gateway_id: int
    state: GatewayState | int
    detail: int
    ts_ns: int
    heard_ns: int
    n_status: int
    age_s: float

    @property
    def silent(self) -> bool:
        return self.age_s * 1000 > GW_SILENT_AFTER_MS

    def __str__(self) -> str:
        state = getattr(self.state, "name", str(self.state))
        if self.silent:
            return f"NOT HEARD for {self.age_s:.0f} s (last said {state})"
        detail = f", detail {self.detail}" if self.detail else ""
        return f"{state}{detail} ({self.age_s:.1f} s ago)"


@dataclass(frozen=True, slots=True)
class ClientAnswer:
    """What one client's engine did with a signal: accepted with the order ids it placed
    (none when the client was already at the target), or rejected with the code and why."""

    client: str  # the client's name (its account id when no configuration was given)
    account: int
    accepted: bool
    order_ids: tuple[int, ...] = ()
    code: Reject | int = Reject.OK
    reason: str = "ok"

    def __str__(self) -> str:
        if self.accepted:
            return f"{self.client}: accepted, orders {list(self.order_ids)}"
        name = getattr(self.code, "name", str(self.code))
        return f"{self.client}: rejected {name} ({self.reason})"


@dataclass(frozen=True, slots=True)
class SignalResult:
    """The engine's answer to a SIGNAL: ``reply`` (ACK when at least one client traded,
    else the first client's REJECT) and ``answers``, one per client that follows the
    strategy. Iterating yields the answers; ``result["alice"]`` is alice's."""

    reply: Ack | Rejected
    answers: tuple[ClientAnswer, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reply.ok

    @property
    def request_id(self) -> int:
        return self.reply.request_id

    @property
    def code(self) -> Reject | int:
        """The reply's code: OK, or why no client traded."""
        return self.reply.code if isinstance(self.reply, Rejected) else Reject.OK

    @property
    def order_id(self) -> int:
        """The first order placed (0 when none; each client's are in ``answers``)."""
        return self.reply.order_id

    def __iter__(self) -> Iterator[ClientAnswer]:
        return iter(self.answers)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, client: str | int) -> ClientAnswer:
        for a in self.answers:
            if client in (a.client, a.account):
                return a
        raise KeyError(f"no answer for client {client!r}")


class OmsError(Exception):
    """Base of the client's errors."""


class OmsTimeout(OmsError, TimeoutError):
    """No answer from the engine within the timeout."""


class RejectedError(OmsError):
    """Raised instead of returning a :class:`Rejected` when ``raise_on_reject`` is set."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(
            f"{rejected.cmd_type.name} rejected: {rejected.code.name} ({rejected.reason})"
        )
        self.rejected = rejected


class ProtocolError(OmsError):
    """The engine refused a frame as malformed, or sent one."""

    def __init__(self, error: int, offset: int = 0) -> None:
        try:
            name = WireError(error).name
        except ValueError:
            name = str(error)
        super().__init__(f"protocol error {name} at byte {offset}")
        self.error = error
        self.offset = offset


Result = Ack | Rejected | QueryResult | SignalResult | int


# ---------------------------------------------------------------------------------------------
# Sans-IO session: encoding commands, matching answers (shared by both clients)
# ---------------------------------------------------------------------------------------------


class _Session:
    def __init__(
        self,
        names: Names,
        account: str | int | None,
        strategy: str | int | None,
        max_events: int,
    ) -> None:
        self.names = names
        self.account = None if account is None else names.account(account)
        self.strategy = 0 if strategy is None else names.strategy(strategy)
        self.signal_rids: set[int] = set()
        self._rid = itertools.count(1)
        self._seq = itertools.count(1)
        self._cid = itertools.count(time.time_ns() // 1000)
        self.pending_rows: dict[int, list[Any]] = {}
        self.events: collections.deque[Any] = collections.deque(maxlen=max_events)
        self.events_dropped = 0
        self.late_answers = 0
        self.inflight: set[int] = set()
        self.last_recv_ns = 0

    # -- helpers at the edge --------------------------------------------------------------
    def next_cid(self) -> int:
        return next(self._cid)

    def price(self, instrument: int, v: Number) -> int:
        return self.names.raw(instrument, v, 0)

    def qty(self, instrument: int, v: Number) -> int:
        return self.names.raw(instrument, v, 1)

    def acct(self, account: str | int | None) -> int:
        """The account of a command: the one given (name or id), else the client's own."""
        if account is not None:
            return self.names.account(account)
        if self.account is None:
            raise ValueError("no account: name the client (client=\"alice\" with config=, "
                             "or account=<id>) or pass account= to the command")
        return self.account

    def strat(self, strategy: str | int | None) -> int:
        return self.strategy if strategy is None else self.names.strategy(strategy)

    def answer(self, rec: Any) -> ClientAnswer:
        """One client's answer row of a SIGNAL."""
        name = self.names.client_name(rec.account)
        if rec.msg_type == MsgType.ACK:
            ids = tuple(i for i in (rec.order_id, rec.leg2_order_id, rec.leg3_order_id) if i)
            return ClientAnswer(name, rec.account, True, ids)
        code = _reject(rec.code)
        return ClientAnswer(name, rec.account, False, (), code, reject_reason(code))

    # -- encoding -------------------------------------------------------------------------
    def encode(self, name: str, fields: dict[str, Any], rows: bool = False
               ) -> tuple[int, bytes]:
        """A record of a new request; ``rows``: its answer carries rows (query, signal)."""
        rid = next(self._rid)
        self.inflight.add(rid)
        if rows:
            self.pending_rows[rid] = []
            if name == "SIGNAL":
                self.signal_rids.add(rid)
        return rid, CODECS[name].encode(rid, next(self._seq), time.time_ns(), 0, **fields)

    def add(self, fb: FrameBuilder, name: str, fields: dict[str, Any]) -> int:
        rid = next(self._rid)
        self.inflight.add(rid)
        fb.add_fields(name, rid, next(self._seq), time.time_ns(), 0, **fields)
        return rid

    # -- decoding -------------------------------------------------------------------------
    def feed(self, frame: Any) -> list[tuple[int, Result | OmsError]]:
        """Decode one incoming frame; return completed (request_id, result); queue events.

        Answers to requests no longer in flight (timed out) are dropped and counted in
        ``late_answers``; a PROTOCOL_ERROR that matches no request is queued as an event.
        """
        done: list[tuple[int, Result | OmsError]] = []
        self.last_recv_ns = time.time_ns()
        try:
            records = list(iter_frame(frame))
        except WireFormatError as e:
            # A malformed frame from the engine: nothing in it can be trusted.
            done.append((0, ProtocolError(e.error, e.offset)))
            return done
        inflight = self.inflight
        for rec in records:
            mt = rec.msg_type
            rid = rec.request_id
            res: Result | OmsError
            if rec.flags & HeaderFlag.QUERY_ROW:
                # a row of a query's answer, or one client's answer to a signal
                rows = self.pending_rows.get(rid)
                if rows is not None:  # rows of a request that timed out are dropped
                    rows.append(rec)
                continue
            if mt == MsgType.ACK:
                res = Ack(
                    rid, _msg_type(rec.cmd_type), rec.order_id, rec.leg2_order_id,
                    rec.leg3_order_id, rec.client_order_id, rec.account, rec.recv_ns, rec.ack_ns,
                )
            elif mt == MsgType.REJECT:
                code = _reject(rec.code)
                res = Rejected(
                    rid, _msg_type(rec.cmd_type), code, reject_reason(code),
                    rec.client_order_id, rec.order_id, rec.account,
                )
            elif mt == MsgType.QUERY_RESULT:
                rows = self.pending_rows.pop(rid, [])
                res = QueryResult(rid, _query_kind(rec.kind), _reject(rec.code),
                                  _typed_rows(rec.kind, rows, rec.send_ns))
            elif mt == MsgType.HEARTBEAT and rid:
                res = time.time_ns() - rec.echo_ns if rec.echo_ns else 0
            elif mt == MsgType.PROTOCOL_ERROR and rec.bad_request_id in inflight:
                rid = rec.bad_request_id
                res = ProtocolError(rec.error, rec.offset)
            else:
                if len(self.events) == self.events.maxlen:
                    self.events_dropped += 1
                self.events.append(rec)
                continue
            if rid in self.signal_rids and isinstance(res, Ack | Rejected):
                self.signal_rids.discard(rid)
                rows = self.pending_rows.pop(rid, [])
                res = SignalResult(res, tuple(self.answer(r) for r in rows))
            if rid in inflight:
                inflight.discard(rid)
                done.append((rid, res))
            else:
                self.late_answers += 1
        return done

    def forget(self, rids: Iterable[int]) -> None:
        """Stop waiting for ``rids`` (timed out): their answers will be dropped."""
        for rid in rids:
            self.inflight.discard(rid)
            self.pending_rows.pop(rid, None)
            self.signal_rids.discard(rid)

    # -- command field builders -------------------------------------------------------------
    def new_order(
        self, instrument: str | int, side: Side | int, quantity: Number, price: Number = 0, *,
        order_type: OrderType | int | None = None, tif: TimeInForce | int = TimeInForce.GTC,
        trigger_price: Number = 0, reduce_only: bool = False, post_only: bool = False,
        expire_ns: int = 0, trail_offset: Number = 0, client_order_id: int | None = None,
        account: str | int | None = None, strategy: str | int | None = None,
    ) -> dict[str, Any]:
        instrument = self.names.instrument(instrument)
        p = self.price(instrument, price)
        if order_type is None:
            order_type = OrderType.LIMIT if p else OrderType.MARKET
        flags = (OrderFlag.REDUCE_ONLY if reduce_only else 0) | (
            OrderFlag.POST_ONLY if post_only else 0
        )
        return {
            "client_order_id": self.next_cid() if client_order_id is None else client_order_id,
            "price": p,
            "trigger_price": self.price(instrument, trigger_price),
            "quantity": self.qty(instrument, quantity),
            "expire_ns": expire_ns,
            "trail_offset": self.price(instrument, trail_offset),
            "account": self.acct(account),
            "strategy": self.strat(strategy),
            "instrument": instrument,
            "side": int(side),
            "order_type": int(order_type),
            "tif": int(tif),
            "order_flags": int(flags),
        }


def reject_reason(code: int) -> str:
    """Return the human text of a Reject code (looked up, never sent on the wire)."""
    try:
        return REJECT_REASONS[Reject(code)]
    except (ValueError, KeyError):
        return f"reject code {code}"


def venue_reason(code: int) -> str:
    """Return ``rejected by venue: <code> <what the code means>``."""
    return f"rejected by venue: {code} {VENUE_REASONS.get(code, 'venue error')}"


def order_reject_text(update: Any) -> str:
    """Why an ORDER_UPDATE (event or row) in status REJECTED was refused: by the venue (its
    code, ``venue_code``) or by the engine (its Reject reason)."""
    if update.venue_code or update.reason == Reject.VENUE_REJECTED:
        return venue_reason(update.venue_code)
    return reject_reason(update.reason)


def alert_text(alert: int, a: int, b: int, order_id: int = 0) -> str:
    """What a RISK_ALERT's details mean (see oms_core.enums.Alert)."""
    # details of RECONCILIATION_DIFFERENCE (oms_core.recovery RECON_*)
    missed_fill, closed_unknown, balance = 1, 2, 3
    if alert == Alert.PROTECTION_REFUSED:
        try:
            action = ProtectAction(b).name.lower()
        except ValueError:
            action = str(b)
        return (f"venue refused protective order {order_id} ({venue_reason(a)}); "
                f"position unprotected, action: {action}")
    if alert in (Alert.DAILY_LOSS_BREAKER, Alert.DRAWDOWN_BREAKER):
        ref = "day start" if alert == Alert.DAILY_LOSS_BREAKER else "peak"
        return f"breaker tripped, account HALTED: P&L {a} vs {ref} {b} (raw quote units)"
    if alert == Alert.REJECT_RATE_BREAKER:
        return f"reject rate over {a} per minute: account HALTED"
    if alert == Alert.RECONCILIATION_DIFFERENCE:
        if a == missed_fill:
            return f"venue fill the engine missed booked at reconciliation (trade {b})"
        if a == closed_unknown:
            return f"order {order_id} open here but not at the venue: closed"
        if a == balance:
            return f"balance differs from the venue's by {b} (raw, venue - engine)"
        return f"reconciliation difference {a}: {b}"
    if alert == Alert.OVERFILL:
        return f"fill over order {order_id}'s quantity: filled {a} of {b} (raw)"
    if alert == Alert.FILL_ON_REJECTED_ORDER:
        return f"fill (trade {a}, qty {b}) on rejected order {order_id}"
    if alert == Alert.UNKNOWN_ORDER_FILL:
        return f"fill (trade {a}, qty {b}) for unknown order {order_id}"
    return f"alert {alert}: a={a} b={b}"


def _typed_rows(kind: int, rows: list[Any], answered_ns: int) -> list[Any]:
    """Rows of the operator's queries as typed results; the others stay decoded records."""
    if kind == QueryKind.ALERTS:
        return [AlertRow(r.event_ns, _enum(Alert, r.alert), r.account, r.strategy,
                         r.instrument, r.order_id, r.a, r.b,
                         alert_text(r.alert, r.a, r.b, r.order_id))
                for r in rows if r.msg_type == MsgType.RISK_ALERT]
    if kind == QueryKind.GATEWAYS:
        return [GatewayRow(r.gateway_id, _enum(GatewayState, r.state), r.detail, r.ts_ns,
                           r.heard_ns, r.n_status, max(0, answered_ns - r.heard_ns) / 1e9)
                for r in rows if r.msg_type == MsgType.GATEWAY_STATE]
    return rows


def _enum(cls: Any, v: int) -> Any:
    try:
        return cls(v)
    except ValueError:
        return v


def _reply(result: Any) -> Any:
    """The Ack / Rejected of a result (a signal's is its ``reply``)."""
    return result.reply if isinstance(result, SignalResult) else result


def _reject(code: int) -> Reject | int:
    try:
        return Reject(code)
    except ValueError:
        return code


def _msg_type(t: int) -> MsgType | int:
    try:
        return MsgType(t)
    except ValueError:
        return t


def _query_kind(k: int) -> QueryKind | int:
    try:
        return QueryKind(k)
    except ValueError:
        return k


def _session(endpoint: str | None, config: Any, client: str | None,
             account: str | int | None, strategy: str | int | None,
             precisions: Mapping[int, tuple[int, int]] | None, max_events: int,
             curve: CurveClientKeys | None = None, user: str | None = None,
             ) -> tuple[_Session, str, CurveClientKeys | None]:
    """The session of a new client, the endpoint it connects to and its CURVE keys (with
    ``config`` and security on: the keys of ``user``, by default the operator's)."""
    if isinstance(config, str | os.PathLike):
        from oms_core.config import load_config

        config = load_config(config)
    if curve is None and config is not None and hasattr(config, "security"):
        from oms_core import security

        if security.security_on(config):
            curve = security.client_keys(config, user or security.OPERATOR_KEY)
    names = Names.from_config(config) if config is not None else Names()
    if precisions:
        names = replace(names, precisions={**names.precisions, **precisions})
    if client is not None:
        if account is not None:
            raise ValueError("give client= (a name) or account=, not both")
        account = names.account(client)
    if endpoint is None:
        if not names.commands:
            raise ValueError("no endpoint: pass endpoint= or config=")
        from oms_core.engine.config import shard_endpoint

        endpoint = shard_endpoint(names.commands, names.shards.get(client or "", 0))
    return _Session(names, account, strategy, max_events), endpoint, curve


def _configure(sock: zmq.Socket, curve: CurveClientKeys | None, identity: bytes | None) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    if identity:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    if curve is not None:
        curve.apply(sock)


class _Commands:
    """Field builders for every command; the concrete clients supply ``_call``."""

    _s: _Session

    @property
    def session(self) -> _Session:
        """The sans-IO session: request ids, pending answers, ``names`` (ids <-> names)."""
        return self._s

    def _call(self, name: str, fields: dict[str, Any], rows: bool = False) -> Any:
        raise NotImplementedError

    def hello(self, accounts: Iterable[str | int] = (), heartbeat_ms: int = 1000,
              client_id: int = 0) -> Any:
        """Open the session; the engine routes the events of ``accounts`` (client names or
        account ids, at most 8) to this client."""
        acc = tuple(self._s.names.account(a) for a in accounts)[:8]
        return self._call("HELLO", {
            "client_id": client_id, "heartbeat_ms": heartbeat_ms, "n_accounts": len(acc),
            "accounts": acc,
        })

    def submit(self, instrument: str | int, side: Side | int, quantity: Number,
               price: Number = 0, **kw: Any) -> Any:
        """Submit one order (see ``_Session.new_order`` for the keywords); Ack or Rejected."""
        return self._call("NEW_ORDER", self._s.new_order(instrument, side, quantity, price, **kw))

    def cancel(self, order_id: int = 0, client_order_id: int = 0,
               account: str | int | None = None) -> Any:
        """Cancel by engine order id, or by client order id when ``order_id`` is 0."""
        return self._call("CANCEL", {
            "order_id": order_id, "client_order_id": client_order_id,
            "account": self._s.acct(account),
        })

    def replace(self, order_id: int = 0, client_order_id: int = 0, *,
                instrument: str | int = 0, price: Number = 0, quantity: Number = 0,
                trigger_price: Number = 0, account: str | int | None = None) -> Any:
        """Amend price / quantity / trigger (0 = unchanged); decimals need ``instrument``."""
        s = self._s
        instrument = s.names.instrument(instrument)
        return self._call("REPLACE", {
            "order_id": order_id, "client_order_id": client_order_id,
            "price": s.price(instrument, price), "quantity": s.qty(instrument, quantity),
            "trigger_price": s.price(instrument, trigger_price),
            "account": s.acct(account),
        })

    def mass_cancel(self, account: str | int | None = None, strategy: str | int = ANY_ID,
                    instrument: str | int = ANY_ID, side: int = 0) -> Any:
        """Cancel every open order matching the filter (ANY_ID matches all)."""
        s = self._s
        return self._call("MASS_CANCEL", {
            "account": s.acct(account), "strategy": s.names.strategy(strategy),
            "instrument": s.names.instrument(instrument), "side": side,
        })

    def bracket(self, instrument: str | int, side: Side | int, quantity: Number, *,
                entry_price: Number = 0, tp_price: Number, sl_trigger_price: Number,
                sl_price: Number = 0, entry_trigger_price: Number = 0,
                entry_type: OrderType | int | None = None,
                tif: TimeInForce | int = TimeInForce.GTC, expire_ns: int = 0,
                account: str | int | None = None, strategy: str | int | None = None) -> Any:
        """Entry + take-profit + stop-loss; the Ack carries the three order ids."""
        s = self._s
        instrument = s.names.instrument(instrument)
        ep = s.price(instrument, entry_price)
        if entry_type is None:
            entry_type = OrderType.LIMIT if ep else OrderType.MARKET
        return self._call("NEW_BRACKET", {
            "entry_client_order_id": s.next_cid(), "tp_client_order_id": s.next_cid(),
            "sl_client_order_id": s.next_cid(), "entry_price": ep,
            "entry_trigger_price": s.price(instrument, entry_trigger_price),
            "quantity": s.qty(instrument, quantity), "tp_price": s.price(instrument, tp_price),
            "sl_trigger_price": s.price(instrument, sl_trigger_price),
            "sl_price": s.price(instrument, sl_price), "expire_ns": expire_ns,
            "account": s.acct(account), "strategy": s.strat(strategy),
            "instrument": instrument, "side": int(side), "entry_type": int(entry_type),
            "tif": int(tif), "order_flags": 0,
        })

    def oco(self, instrument: str | int, side: Side | int, quantity: Number, *,
            a_type: OrderType | int, a_price: Number = 0, a_trigger_price: Number = 0,
            b_type: OrderType | int, b_price: Number = 0, b_trigger_price: Number = 0,
            tif: TimeInForce | int = TimeInForce.GTC, expire_ns: int = 0,
            account: str | int | None = None, strategy: str | int | None = None) -> Any:
        """Two orders that cancel each other; the Ack carries both order ids."""
        s = self._s
        instrument = s.names.instrument(instrument)
        return self._call("NEW_OCO", {
            "a_client_order_id": s.next_cid(), "b_client_order_id": s.next_cid(),
            "quantity": s.qty(instrument, quantity), "a_price": s.price(instrument, a_price),
            "a_trigger_price": s.price(instrument, a_trigger_price),
            "b_price": s.price(instrument, b_price),
            "b_trigger_price": s.price(instrument, b_trigger_price), "expire_ns": expire_ns,
            "account": s.acct(account), "strategy": s.strat(strategy),
            "instrument": instrument, "side": int(side), "a_type": int(a_type),
            "b_type": int(b_type), "tif": int(tif), "order_flags": 0,
        })

    def signal(self, instrument: str | int, value: Number,
               mode: SignalMode | int = SignalMode.DIRECTION, price: Number = 0,
               account: str | int | None = None, strategy: str | int | None = None) -> Any:
        """Send a strategy signal; return a :class:`SignalResult`, one answer per client.

        ``value``: DIRECTION -1 / 0 / 1 (0 flattens); TARGET_QTY a signed target position
        (a decimal quantity, or a raw int); TARGET_WEIGHT the signed share of each client's
        balance to hold (a decimal fraction, ``"0.25"`` for a quarter, exact to one part per
        million; or a raw int in parts per million). ``account``: the one client it is for
        (name or id); without it, the client's own account, or every follower of the
        strategy (ANY_ID) when the client has none.
        """
        s = self._s
        instrument = s.names.instrument(instrument)
        if mode == SignalMode.DIRECTION:
            if value not in (-1, 0, 1):
                raise ValueError("DIRECTION signal value must be -1, 0 or 1")
            raw = int(value)
        elif mode == SignalMode.TARGET_WEIGHT:
            if isinstance(value, bool | float):
                raise TypeError("a weight is a decimal string, a Decimal or a raw int (ppm)")
            raw = value if isinstance(value, int) else to_raw(value, _WEIGHT_DIGITS)
        else:
            raw = s.qty(instrument, value)
        if account is None and s.account is None:
            account = ANY_ID
        return self._call("SIGNAL", {
            "value": raw, "price": s.price(instrument, price), "mode": int(mode),
            "account": s.acct(account), "strategy": s.strat(strategy),
            "instrument": instrument,
        }, rows=True)

    def query(self, kind: QueryKind | int, account: str | int | None = None,
              strategy: str | int = ANY_ID, instrument: str | int = ANY_ID,
              order_id: int = 0) -> Any:
        """Ask for state; returns a QueryResult with the decoded rows (raw integers: see
        :meth:`decimal_price` / :meth:`decimal_qty`)."""
        s = self._s
        return self._call("QUERY", {
            "kind": int(kind), "account": s.acct(account),
            "strategy": s.names.strategy(strategy),
            "instrument": s.names.instrument(instrument), "order_id": order_id,
        }, rows=True)

    def decimal_price(self, instrument: str | int, raw: int) -> Decimal:
        """A raw price of ``instrument`` (from an answer or event) as an exact Decimal."""
        names = self._s.names
        return names.decimal(names.instrument(instrument), raw, 0)

    def decimal_qty(self, instrument: str | int, raw: int) -> Decimal:
        """A raw quantity of ``instrument`` as an exact Decimal."""
        names = self._s.names
        return names.decimal(names.instrument(instrument), raw, 1)

    def orders(self, open_only: bool = True, **kw: Any) -> Any:
        return self.query(QueryKind.OPEN_ORDERS if open_only else QueryKind.ORDERS, **kw)

    def positions(self, **kw: Any) -> Any:
        """Positions per instrument (every exchange); with ``strategy=`` that strategy's."""
        return self.query(QueryKind.POSITIONS, **kw)

    def balances(self, **kw: Any) -> Any:
        return self.query(QueryKind.BALANCES, **kw)

    def limits(self, **kw: Any) -> Any:
        return self.query(QueryKind.LIMITS, **kw)

    def account_snapshot(self, **kw: Any) -> Any:
        return self.query(QueryKind.ACCOUNT, **kw)

    def alerts(self, limit: int = 0, account: str | int | None = None) -> Any:
        """The engine's recent risk alerts (:class:`AlertRow` rows, newest first; at most
        ``limit``, 0: all it keeps): every account the session may see, or ``account``'s."""
        return self.query(QueryKind.ALERTS, account=ANY_ID if account is None else account,
                          order_id=limit)

    def gateways(self) -> Any:
        """The last status of every gateway the engine heard (:class:`GatewayRow` rows)."""
        return self.query(QueryKind.GATEWAYS, account=ANY_ID)

    def admin(self, action: AdminAction | int, *, scope: Scope | int = 0,
              account: str | int = 0, strategy: str | int = 0, kill_mode: KillMode | int = 0,
              limit: Limit | int = 0, value: int = 0) -> Any:
        """Send an operator action (admin role); clients and strategies by name or id."""
        names = self._s.names
        return self._call("ADMIN", {
            "action": int(action), "scope": int(scope), "account": names.account(account),
            "strategy": names.strategy(strategy), "kill_mode": int(kill_mode),
            "limit": int(limit), "value": value,
        })

    def kill(self, scope: Scope | int = Scope.GLOBAL, mode: KillMode | int = KillMode.HALT,
             account: str | int = 0, strategy: str | int = 0) -> Any:
        return self.admin(AdminAction.KILL, scope=scope, kill_mode=mode, account=account,
                          strategy=strategy)

    def resume(self, scope: Scope | int = Scope.GLOBAL, account: str | int = 0,
               strategy: str | int = 0) -> Any:
        return self.admin(AdminAction.RESUME, scope=scope, account=account, strategy=strategy)

    def set_limit(self, account: str | int, limit: Limit | int, value: int) -> Any:
        return self.admin(AdminAction.SET_LIMIT, account=account, limit=limit, value=value)

    def strategy_enabled(self, account: str | int, strategy: str | int, on: bool) -> Any:
        action = AdminAction.STRATEGY_ON if on else AdminAction.STRATEGY_OFF
        return self.admin(action, account=account, strategy=strategy)


# ---------------------------------------------------------------------------------------------
# Blocking client
# ---------------------------------------------------------------------------------------------


class OmsClient(_Commands):
    """Blocking client over a DEALER socket; one call at a time (not thread-safe).

    Parameters
    ----------
    endpoint : str, optional
        The engine's ROUTER endpoint, e.g. ``"tcp://127.0.0.1:5555"`` or ``"ipc:///run/oms"``;
        default: the ``[engine] commands`` endpoint of the client's shard in ``config``.
    config : OmsConfig or path, optional
        The OMS configuration: names, ids and precisions (:class:`bindings.names.Names`).
    client : str, optional
        The client (``[clients.<name>]``) whose account commands use by default.
    account, strategy : str or int, optional
        Defaults for commands that take them (names need ``config``); without an account
        every order command must name one.
    timeout : float
        Seconds to wait for each answer before raising :class:`OmsTimeout`.
    raise_on_reject : bool
        Raise :class:`RejectedError` instead of returning :class:`Rejected`.
    curve : CurveClientKeys, optional
        CURVE keys (client pair + server public key) for an authenticated, encrypted link;
        with ``config`` and security on, the keys of ``user`` from ``[security] keys_dir``.
    user : str, optional
        The key to use from the configuration's keys (a ``[security.users.<name>]``);
        default ``operator`` (admin).
    precisions : mapping, optional
        ``{instrument: (price_decimals, qty_decimals)}`` to accept decimal strings.
    """

    def __init__(
        self, endpoint: str | None = None, *, config: Any = None, client: str | None = None,
        account: str | int | None = None, strategy: str | int | None = None,
        timeout: float = 5.0, raise_on_reject: bool = False,
        curve: CurveClientKeys | None = None, user: str | None = None,
        precisions: Mapping[int, tuple[int, int]] | None = None,
        context: zmq.Context | None = None, identity: bytes | None = None,
        max_events: int = 100_000,
    ) -> None:
        self._s, endpoint, curve = _session(endpoint, config, client, account, strategy,
                                            precisions, max_events, curve, user)
        self.timeout = timeout
        self.raise_on_reject = raise_on_reject
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        _configure(self._sock, curve, identity)
        self._sock.setsockopt(zmq.SNDTIMEO, max(1, int(timeout * 1000)))
        self._sock.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._done: dict[int, Any] = {}
        self._fb = FrameBuilder(1 << 20)

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> OmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self, timeout_ms: int) -> bool:
        """Receive and decode every frame available within ``timeout_ms``; True if any."""
        if not self._poller.poll(timeout_ms):
            return False
        got = False
        while True:
            try:
                frame = self._sock.recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return got
            got = True
            for rid, res in self._s.feed(frame):
                self._done[rid] = res

    def _wait(self, rids: list[int], timeout: float | None = None) -> list[Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        want = set(rids)
        while True:
            if 0 in self._done:  # malformed frame from the engine
                raise self._done.pop(0)
            if want.issubset(self._done.keys()):
                break
            for rid in want & self._done.keys():
                if isinstance(self._done[rid], ProtocolError):
                    raise self._done.pop(rid)
            left = deadline - time.monotonic()
            if left <= 0:
                self._s.forget(want - self._done.keys())
                for rid in want:
                    self._done.pop(rid, None)
                missing = len(want - self._done.keys())
                raise OmsTimeout(f"no answer from the engine for {missing} request(s)")
            self._pump(max(1, int(left * 1000)))
        out = [self._done.pop(r) for r in rids]
        for r in out:
            if isinstance(r, ProtocolError):
                raise r
            if self.raise_on_reject and isinstance(_reply(r), Rejected):
                raise RejectedError(_reply(r))
        return out

    def _send(self, data: Any, rids: Iterable[int]) -> None:
        try:
            self._sock.send(data, copy=True)
        except zmq.Again:  # SNDTIMEO: no connected engine (down, or CURVE handshake refused)
            self._s.forget(rids)
            raise OmsTimeout("could not send to the engine within the timeout") from None

    def _call(self, name: str, fields: dict[str, Any], rows: bool = False) -> Any:
        rid, data = self._s.encode(name, fields, rows)
        self._send(data, (rid,))
        return self._wait([rid])[0]

    # -- extras ---------------------------------------------------------------------------
    def heartbeat(self) -> int:
        """Send a HEARTBEAT and wait for its echo; return the round trip in ns."""
        rid, data = self._s.encode("HEARTBEAT", {"last_seq": 0, "echo_ns": 0})
        self._send(data, (rid,))
        return self._wait([rid])[0]

    def submit_many(self, orders: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Send many orders batched in as few frames as possible; return answers in order.

        Each item holds the keywords of :meth:`submit` (``instrument``, ``side``,
        ``quantity``, ``price``, ...).
        """
        fb = self._fb
        codec = CODECS["NEW_ORDER"]
        rids: list[int] = []
        fb.reset()
        for o in orders:
            if not fb.room(codec):
                self._send(fb.view(), rids)
                fb.reset()
            kw = dict(o)
            rids.append(self._s.add(fb, "NEW_ORDER", self._s.new_order(
                kw.pop("instrument"), kw.pop("side"), kw.pop("quantity"), kw.pop("price", 0),
                **kw)))
        if len(fb):
            self._send(fb.view(), rids)
            fb.reset()
        timeout = self.timeout + len(rids) * 1e-4
        return self._wait(rids, timeout)

    def events(self, timeout: float = 0.0) -> Iterator[Any]:
        """Yield this client's events (decoded records) until none arrives for ``timeout`` s."""
        ev = self._s.events
        while True:
            while ev:
                yield ev.popleft()
            if not self._pump(int(timeout * 1000)):
                if not ev:
                    return

    def send_raw(self, frame: bytes) -> None:
        """Send a raw frame (tests, tools); answers land in events / pending results."""
        self._send(frame, ())


# ---------------------------------------------------------------------------------------------
# asyncio client
# ---------------------------------------------------------------------------------------------


class AsyncOmsClient(_Commands):
    """asyncio client (works on uvloop); the same commands as :class:`OmsClient`, awaited.

    Use ``async with AsyncOmsClient(endpoint) as c:``. A reader task matches answers to
    futures by request id and queues events; with ``heartbeat_interval`` > 0 a task sends
    heartbeats and :attr:`engine_alive` turns False when none was answered for 3 intervals.
    """

    def __init__(
        self, endpoint: str | None = None, *, config: Any = None, client: str | None = None,
        account: str | int | None = None, strategy: str | int | None = None,
        timeout: float = 5.0, raise_on_reject: bool = False,
        curve: CurveClientKeys | None = None, user: str | None = None,
        precisions: Mapping[int, tuple[int, int]] | None = None,
        context: zmq.asyncio.Context | None = None, identity: bytes | None = None,
        heartbeat_interval: float = 0.0, max_events: int = 100_000,
    ) -> None:
        self._s, endpoint, curve = _session(endpoint, config, client, account, strategy,
                                            precisions, max_events, curve, user)
        self.timeout = timeout
        self.raise_on_reject = raise_on_reject
        self.heartbeat_interval = heartbeat_interval
        self._endpoint = endpoint
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        _configure(self._sock, curve, identity)
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._event_signal: asyncio.Event | None = None
        self._fb = FrameBuilder(1 << 20)
        self.last_heartbeat_rtt_ns = 0

    async def __aenter__(self) -> AsyncOmsClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._sock.connect(self._endpoint)
        self._event_signal = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._reader()))
        if self.heartbeat_interval > 0:
            self._tasks.append(asyncio.create_task(self._heartbeats()))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: PERF203 - shutdown only
                pass
        self._tasks.clear()
        for f in self._futures.values():
            if not f.done():
                f.cancel()
        self._sock.close(linger=0)

    @property
    def engine_alive(self) -> bool:
        if self.heartbeat_interval <= 0:
            return True
        return time.time_ns() - self._s.last_recv_ns < 3 * self.heartbeat_interval * 1e9

    async def _reader(self) -> None:
        while True:
            frame = await self._sock.recv(copy=True)
            for rid, res in self._s.feed(frame):
                fut = self._futures.pop(rid, None)
                if fut is not None and not fut.done():
                    if isinstance(res, OmsError):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
                elif rid == 0 and isinstance(res, OmsError):
                    for f in self._futures.values():
                        if not f.done():
                            f.set_exception(res)
                    self._futures.clear()
            if self._s.events and self._event_signal is not None:
                self._event_signal.set()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                self.last_heartbeat_rtt_ns = await self.heartbeat()
            except OmsTimeout:
                pass

    async def _await(self, rids: list[int], timeout: float | None = None) -> list[Any]:
        loop = asyncio.get_running_loop()
        futs = []
        for rid in rids:
            fut = self._futures.get(rid)
            if fut is None:
                fut = self._futures[rid] = loop.create_future()
            futs.append(fut)
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                out = list(await asyncio.gather(*futs))
        except TimeoutError:
            for rid in rids:
                self._futures.pop(rid, None)
            self._s.forget(rids)
            raise OmsTimeout(f"no answer from the engine for {len(rids)} request(s)") from None
        if self.raise_on_reject:
            for r in out:
                if isinstance(_reply(r), Rejected):
                    raise RejectedError(_reply(r))
        return out

    async def _call_async(self, name: str, fields: dict[str, Any], rows: bool) -> Any:
        rid, data = self._s.encode(name, fields, rows)
        self._futures[rid] = asyncio.get_running_loop().create_future()
        await self._send(data, (rid,))
        return (await self._await([rid]))[0]

    async def _send(self, data: Any, rids: Iterable[int]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._sock.send(data)
        except TimeoutError:  # no connected engine (down, or CURVE handshake refused)
            for rid in rids:
                self._futures.pop(rid, None)
            self._s.forget(rids)
            raise OmsTimeout("could not send to the engine within the timeout") from None

    def _call(self, name: str, fields: dict[str, Any], rows: bool = False) -> Any:
        return self._call_async(name, fields, rows)

    async def heartbeat(self) -> int:
        """Send a HEARTBEAT and await its echo; return the round trip in ns."""
        return await self._call_async("HEARTBEAT", {"last_seq": 0, "echo_ns": 0}, False)

    async def submit_many(self, orders: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Send many orders batched into frames; return the answers in order."""
        fb = self._fb
        codec = CODECS["NEW_ORDER"]
        loop = asyncio.get_running_loop()
        rids: list[int] = []
        fb.reset()
        for o in orders:
            if not fb.room(codec):
                await self._send(fb.tobytes(), rids)
                fb.reset()
            kw = dict(o)
            rid = self._s.add(fb, "NEW_ORDER", self._s.new_order(
                kw.pop("instrument"), kw.pop("side"), kw.pop("quantity"), kw.pop("price", 0),
                **kw))
            self._futures[rid] = loop.create_future()
            rids.append(rid)
        if len(fb):
            await self._send(fb.tobytes(), rids)
            fb.reset()
        return await self._await(rids, self.timeout + len(rids) * 1e-4)

    async def events(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """Yield this client's events; stop after ``timeout`` s without one (None: never)."""
        ev = self._s.events
        assert self._event_signal is not None, "connect() first"
        while True:
            while ev:
                yield ev.popleft()
            self._event_signal.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._event_signal.wait()
            except TimeoutError:
                if not ev:
                    return

    async def send_raw(self, frame: bytes) -> None:
        await self._send(frame, ())


__all__ = [
    "Ack", "AlertRow", "AsyncOmsClient", "ClientAnswer", "GatewayRow", "Names", "OmsClient",
    "OmsError", "OmsTimeout", "ProtocolError", "QueryResult", "Rejected", "RejectedError",
    "SignalResult", "alert_text", "order_reject_text", "reject_reason", "venue_reason",
]
