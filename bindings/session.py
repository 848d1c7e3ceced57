"""The sans-IO half of both clients (:class:`Session`): request ids, the records of new
requests, answers matched back to their requests, and this client's events queued. It never
touches a socket; ``bindings.client`` sends what it encodes and feeds it what arrives."""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Iterable
from typing import Any

from bindings.names import Names, Number
from bindings.results import (
    Ack,
    ClientAnswer,
    OmsError,
    ProtocolError,
    QueryResult,
    Rejected,
    Result,
    SignalResult,
    as_enum,
    reject_reason,
    typed_rows,
)
from bindings.wire.records import CODECS, FrameBuilder, WireFormatError, iter_frame
from bindings.wire.spec import HeaderFlag, MsgType, QueryKind
from oms_core.enums import OrderFlag, OrderType, Reject, Side, TimeInForce


class Session:
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
        code = as_enum(Reject, rec.code)
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
                    rid, as_enum(MsgType, rec.cmd_type), rec.order_id, rec.leg2_order_id,
                    rec.leg3_order_id, rec.client_order_id, rec.account, rec.recv_ns, rec.ack_ns,
                )
            elif mt == MsgType.REJECT:
                code = as_enum(Reject, rec.code)
                res = Rejected(
                    rid, as_enum(MsgType, rec.cmd_type), code, reject_reason(code),
                    rec.client_order_id, rec.order_id, rec.account,
                )
            elif mt == MsgType.QUERY_RESULT:
                rows = self.pending_rows.pop(rid, [])
                res = QueryResult(rid, as_enum(QueryKind, rec.kind), as_enum(Reject, rec.code),
                                  typed_rows(rec.kind, rows, rec.send_ns))
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


__all__ = ["Session"]
