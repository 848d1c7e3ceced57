"""What the engine answers a client, as Python values, and the errors the clients raise.

:class:`Ack`, :class:`Rejected`, :class:`QueryResult` and :class:`SignalResult` are the answers
to commands; :class:`AlertRow` and :class:`GatewayRow` the typed rows of the operator's
queries; :func:`reject_reason`, :func:`venue_reason`, :func:`order_reject_text` and
:func:`alert_text` say what a code means in words. ``bindings.client`` re-exports them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bindings.wire.spec import GW_SILENT_AFTER_MS, GatewayState, MsgType, QueryKind, WireError
from oms_core.enums import REJECT_REASONS, VENUE_REASONS, Alert, ProtectAction, Reject

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
# Codes in words, typed rows
# ---------------------------------------------------------------------------------------------


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


def typed_rows(kind: int, rows: list[Any], answered_ns: int) -> list[Any]:
    """Rows of the operator's queries as typed results; the others stay decoded records."""
    if kind == QueryKind.ALERTS:
        return [AlertRow(r.event_ns, as_enum(Alert, r.alert), r.account, r.strategy,
                         r.instrument, r.order_id, r.a, r.b,
                         alert_text(r.alert, r.a, r.b, r.order_id))
                for r in rows if r.msg_type == MsgType.RISK_ALERT]
    if kind == QueryKind.GATEWAYS:
        return [GatewayRow(r.gateway_id, as_enum(GatewayState, r.state), r.detail, r.ts_ns,
                           r.heard_ns, r.n_status, max(0, answered_ns - r.heard_ns) / 1e9)
                for r in rows if r.msg_type == MsgType.GATEWAY_STATE]
    return rows


def as_enum(cls: Any, v: int) -> Any:
    try:
        return cls(v)
    except ValueError:
        return v


def reply_of(result: Any) -> Any:
    """The Ack / Rejected of a result (a signal's is its ``reply``)."""
    return result.reply if isinstance(result, SignalResult) else result



__all__ = [
    "Ack", "AlertRow", "ClientAnswer", "GatewayRow", "OmsError", "OmsTimeout", "ProtocolError",
    "QueryResult", "Rejected", "RejectedError", "Result", "SignalResult", "alert_text",
    "as_enum", "order_reject_text", "reject_reason", "reply_of", "typed_rows", "venue_reason",
]
