"""A tiny stand-in for the engine's ROUTER, for tests about the client alone (how it frames
a batch) and benchmarks of the client; everything else runs against the real engine
(``oms_core.engine.process``).

It is NOT the engine: no risk checks, no venue. It validates each frame, answers every
command with the records the real engine sends (ACK / REJECT / HEARTBEAT echo / query rows +
QUERY_RESULT / PROTOCOL_ERROR) in one reply frame per request frame, and emits an
ORDER_UPDATE event for each accepted or canceled order, so clients can be exercised over real
sockets. Rejects: quantity <= 0 -> INVALID_QUANTITY; cancel of an unknown order ->
UNKNOWN_ORDER; with a KeyRegistry, commands the identity may not send -> PROTOCOL_ERROR
UNAUTHORIZED.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import zmq

from bindings.security import (
    CurveKeyPair,
    KeyRegistry,
    authorize,
    identity_of,
    make_curve_server,
)
from bindings.wire.records import CODECS, FrameBuilder, check_frame_py, decode, decode_header
from bindings.wire.spec import MAGIC, HeaderFlag, MsgType, QueryKind, WireError
from oms_core.enums import OrderStatus, Reject

try:  # the compiled validator when built, else the reference
    from bindings.wire.codec import check_frame as _check_frame
except ImportError:  # pragma: no cover - before `setup.py build_ext`
    _check_frame = check_frame_py


class StubEngine:
    """ROUTER answering wire commands in a background thread. ``with StubEngine() as e:``."""

    def __init__(self, endpoint: str = "tcp://127.0.0.1:0", *,
                 curve: CurveKeyPair | None = None, registry: KeyRegistry | None = None,
                 context: zmq.Context | None = None) -> None:
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        if curve is not None:
            make_curve_server(self._sock, curve)
        self._sock.bind(endpoint)
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.registry = registry
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-engine", daemon=True)
        self._oid = itertools.count(1)
        self._seq = itertools.count(1)
        self.orders: dict[int, Any] = {}  # order id -> NEW_ORDER record (open orders)
        self.received: list[Any] = []  # every decoded command (tests inspect it)
        self.frames = 0
        self._out = FrameBuilder(1 << 20)

    def __enter__(self) -> StubEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._sock.close(linger=0)

    # -- loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(50):
                continue
            while True:
                try:
                    parts = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                if len(parts) != 2:
                    continue
                ident, frame = parts
                self.frames += 1
                reply = self.handle(frame.buffer, frame)
                if reply:
                    self._sock.send_multipart([ident.bytes, reply])

    # -- answers --------------------------------------------------------------------------
    def _emit(self, name: str, request_id: int = 0, flags: int = 0, **fields: Any) -> None:
        self._out.add_fields(name, request_id, next(self._seq), time.time_ns(), flags, **fields)

    def handle(self, buf: Any, frame: zmq.Frame | None = None) -> bytes:
        """Answer one request frame; return the reply frame (empty when nothing to say)."""
        out = self._out
        out.reset()
        n, err, off = _check_frame(buf)
        if err != WireError.OK:
            bad_rid = bad_type = 0
            if len(buf) - off >= 32:
                h = decode_header(buf, off)
                if h.magic == MAGIC:  # otherwise the header is noise: do not echo it
                    bad_rid, bad_type = h.request_id, h.msg_type
            self._emit("PROTOCOL_ERROR", bad_rid, bad_request_id=bad_rid, offset=off,
                       error=int(err), bad_type=bad_type)
            return out.tobytes()
        ident = identity_of(frame, self.registry) if (self.registry and frame) else None
        off = 0
        recv_ns = time.time_ns()
        end = len(buf)
        while off < end:
            rec = decode(buf, off)
            off += CODECS_BY_NAME_SIZE[rec.msg_type]
            self.received.append(rec)
            if self.registry is not None:
                acc = getattr(rec, "account", None)
                strategy = rec.strategy if rec.msg_type == MsgType.SIGNAL else None
                if authorize(ident, rec.msg_type, acc, strategy) != WireError.OK:
                    self._emit("PROTOCOL_ERROR", rec.request_id, bad_request_id=rec.request_id,
                               error=int(WireError.UNAUTHORIZED), bad_type=int(rec.msg_type))
                    continue
            self._answer(rec, recv_ns)
        return out.tobytes()

    def _ack(self, rec: Any, recv_ns: int, **fields: Any) -> None:
        self._emit("ACK", rec.request_id, recv_ns=recv_ns, ack_ns=time.time_ns(),
                   cmd_type=int(rec.msg_type), account=getattr(rec, "account", 0), **fields)

    def _reject(self, rec: Any, recv_ns: int, code: Reject, **fields: Any) -> None:
        self._emit("REJECT", rec.request_id, recv_ns=recv_ns, reject_ns=time.time_ns(),
                   code=int(code), cmd_type=int(rec.msg_type),
                   account=getattr(rec, "account", 0), **fields)

    def _update(self, o: Any, oid: int, status: OrderStatus, request_id: int = 0,
                flags: int = 0) -> None:
        leaves = 0 if status in (OrderStatus.CANCELED,) else o.quantity
        self._emit("ORDER_UPDATE", request_id, flags, order_id=oid,
                   client_order_id=o.client_order_id, quantity=o.quantity, filled=0,
                   leaves=leaves, price=o.price, trigger_price=o.trigger_price,
                   event_ns=time.time_ns(), account=o.account, strategy=o.strategy,
                   instrument=o.instrument, side=o.side, order_type=o.order_type, tif=o.tif,
                   status=int(status))

    def _answer(self, rec: Any, recv_ns: int) -> None:
        mt = rec.msg_type
        if mt == MsgType.HEARTBEAT:
            self._emit("HEARTBEAT", rec.request_id, last_seq=rec.seq, echo_ns=rec.send_ns)
        elif mt == MsgType.NEW_ORDER:
            if rec.quantity <= 0:
                self._reject(rec, recv_ns, Reject.INVALID_QUANTITY,
                             client_order_id=rec.client_order_id)
                return
            oid = next(self._oid)
            self.orders[oid] = rec
            self._ack(rec, recv_ns, order_id=oid, client_order_id=rec.client_order_id)
            self._update(rec, oid, OrderStatus.NEW)
        elif mt == MsgType.CANCEL:
            oid = rec.order_id
            if not oid:
                oid = next((k for k, o in self.orders.items()
                            if o.client_order_id == rec.client_order_id), 0)
            o = self.orders.pop(oid, None)
            if o is None:
                self._reject(rec, recv_ns, Reject.UNKNOWN_ORDER, order_id=rec.order_id,
                             client_order_id=rec.client_order_id)
                return
            self._ack(rec, recv_ns, order_id=oid, client_order_id=o.client_order_id)
            self._update(o, oid, OrderStatus.CANCELED)
        elif mt == MsgType.REPLACE:
            if rec.order_id not in self.orders:
                self._reject(rec, recv_ns, Reject.UNKNOWN_ORDER, order_id=rec.order_id)
                return
            self._ack(rec, recv_ns, order_id=rec.order_id)
        elif mt == MsgType.NEW_BRACKET:
            self._ack(rec, recv_ns, order_id=next(self._oid), leg2_order_id=next(self._oid),
                      leg3_order_id=next(self._oid), client_order_id=rec.entry_client_order_id)
        elif mt == MsgType.NEW_OCO:
            self._ack(rec, recv_ns, order_id=next(self._oid), leg2_order_id=next(self._oid),
                      client_order_id=rec.a_client_order_id)
        elif mt == MsgType.QUERY:
            n = 0
            if rec.kind in (QueryKind.OPEN_ORDERS, QueryKind.ORDERS):
                for oid, o in self.orders.items():
                    self._update(o, oid, OrderStatus.NEW, rec.request_id, HeaderFlag.QUERY_ROW)
                    n += 1
            self._emit("QUERY_RESULT", rec.request_id, n_rows=n, code=0, kind=rec.kind)
        elif mt in (MsgType.HELLO, MsgType.MASS_CANCEL, MsgType.SIGNAL, MsgType.ADMIN):
            self._ack(rec, recv_ns)
        else:  # events / gateway records are not commands
            self._emit("PROTOCOL_ERROR", rec.request_id, bad_request_id=rec.request_id,
                       error=int(WireError.WRONG_DIRECTION), bad_type=int(mt))


CODECS_BY_NAME_SIZE = {c.msg_type: c.size for c in CODECS.values()}

__all__ = ["StubEngine"]
