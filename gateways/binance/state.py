"""What the Binance gateway holds: one :class:`VenueSession` per engine account, one
:class:`OrderState` per live order, and the venue's terms of an order (:func:`venue_terms`)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oms_core.backoff import Backoff
from oms_core.enums import OrderFlag, OrderStatus, OrderType, TimeInForce

from ..book import format_fixed, parse_fixed
from ..config import Instrument, VenueAccount
from ..ratelimit import RateLimiter
from ..ws import WsConnection
from .rest import BinanceRest

if TYPE_CHECKING:
    from .gateway import BinanceGateway

# GW_STATUS detail codes
DETAIL_MARKET_DATA = 1
DETAIL_USER_STREAM = 2
DETAIL_REST = 3
DETAIL_BOOK = 1000  # + instrument id
NO_VENUE_ACCOUNT = -2015
"""Reject code of an order whose account has no venue account at this gateway (Binance's
"Invalid API-key, IP, or permissions for action.")."""

STATUS_MAP = {  # Binance's order status -> the engine's
    "NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL, "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL)


def venue_terms(rec: Any, inst: Instrument, ref_price: int = 0) -> dict[str, str]:
    """Binance's ``type``, ``price``, ``stopPrice``, ``trailingDelta`` and ``timeInForce``
    of one GW_NEW_ORDER.

    The engine sends held stops that fired as MARKET / LIMIT; a stop type arriving here is a
    native stop for the venue to hold. A native TRAILING_STOP (its trail distance in
    ``trigger_price``) is a STOP_LOSS with ``trailingDelta``: the distance in BIPS of
    ``ref_price`` (the last price), within Binance's 10..2000. Post-only is LIMIT_MAKER; GTD
    and DAY rest as GTC (the engine cancels them at expiry). Raise ValueError for an order
    Binance cannot take.
    """
    ot = OrderType(rec.order_type)
    if ot == OrderType.MARKET:
        return {"type": "MARKET"}
    tif = _TIF.get(TimeInForce(rec.tif), "GTC")
    price = format_fixed(rec.price, inst.price_decimals)
    if ot == OrderType.LIMIT:
        if rec.order_flags & OrderFlag.POST_ONLY:
            return {"type": "LIMIT_MAKER", "price": price}
        return {"type": "LIMIT", "timeInForce": tif, "price": price}
    stop = format_fixed(rec.trigger_price, inst.price_decimals)
    if ot == OrderType.STOP_LIMIT:
        return {"type": "STOP_LOSS_LIMIT", "timeInForce": tif, "price": price, "stopPrice": stop}
    if ot == OrderType.STOP_MARKET:
        return {"type": "STOP_LOSS", "stopPrice": stop}
    if ot == OrderType.TAKE_PROFIT:
        return {"type": "TAKE_PROFIT", "stopPrice": stop}
    if ot == OrderType.TRAILING_STOP:
        if ref_price <= 0 or rec.trigger_price <= 0:
            raise ValueError("trailing stop without a trail distance or a last price")
        bips = min(2000, max(10, (rec.trigger_price * 10_000 + ref_price // 2) // ref_price))
        return {"type": "STOP_LOSS", "trailingDelta": str(bips)}
    raise ValueError(f"order type {ot.name} is not sent to Binance")


def terms_of(inst: Instrument, otype: str, price: str, stop: str, tif: str) -> dict[str, str]:
    """:func:`venue_terms` of an order the venue reports (one followed again after a restart)."""
    terms = {"type": otype}
    if otype not in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"):
        terms["price"] = format_fixed(parse_fixed(price, inst.price_decimals),
                                      inst.price_decimals)
    if otype not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
        terms["stopPrice"] = format_fixed(parse_fixed(stop, inst.price_decimals),
                                          inst.price_decimals)
    if otype in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        terms["timeInForce"] = tif
    return terms


class BoundedSet:
    """A set that forgets its oldest members beyond ``cap`` (no unbounded growth)."""

    def __init__(self, cap: int = 100_000) -> None:
        self._set: set[Any] = set()
        self._order: deque[Any] = deque()
        self.cap = cap

    def add(self, item: Any) -> bool:
        """Add; return False if it was already present."""
        if item in self._set:
            return False
        self._set.add(item)
        self._order.append(item)
        if len(self._order) > self.cap:
            self._set.discard(self._order.popleft())
        return True

    def __contains__(self, item: Any) -> bool:
        return item in self._set

    def __len__(self) -> int:
        return len(self._set)


class VenueSession:
    """One venue account: its keys, REST client (own weight budget), user data stream and
    the trades already reported on it (venue trade ids repeat across accounts)."""

    def __init__(self, gw: BinanceGateway, acct: VenueAccount) -> None:
        cfg = gw.cfg
        self.account_id = acct.account_id
        self.name = acct.name or str(acct.account_id)
        key, secret = acct.credentials() if cfg.user_stream else ("", "")
        self.rest = BinanceRest(cfg.rest_url, key, secret, RateLimiter(cfg.weight_limit_1m),
                                cfg.request_timeout_s, cfg.recv_window_ms)
        self.seen_trades = BoundedSet(200_000)
        self.last_trade_id: dict[str, int] = {}
        self.foreign_ids = BoundedSet(50_000)  # venue order ids on this account not ours
        self.user_ready = asyncio.Event()
        self.listen_key = ""
        self.user_conn = WsConnection(
            f"user-{self.name}", lambda: gw._user_url(self),
            lambda payload: gw.on_user_message(payload, self),
            on_connected=lambda conn: gw._user_connected(self),
            on_disconnected=lambda conn: gw._user_disconnected(self),
            backoff=Backoff(cfg.reconnect_base_s, cfg.reconnect_max_s),
            ping_idle_s=cfg.ping_idle_s)

    def __repr__(self) -> str:  # no keys in reprs
        return f"VenueSession(account={self.account_id}, name={self.name!r})"


@dataclass
class OrderState:
    """What the gateway knows of one live order (removed when final)."""

    order_id: int
    cid: str
    inst: Instrument
    quantity: int
    session: VenueSession
    exch_order_id: int = 0
    acked: bool = False
    cum_qty: int = 0
    unknown_since_ms: int = 0  # exchange time the unknown request was stamped with
    not_found: int = 0
    side: str = ""
    venue: dict[str, str] = field(default_factory=dict)  # type, price, stopPrice, timeInForce
    base_qty: int = 0  # filled by the venue orders this one replaced
    retired: set[int] = field(default_factory=set)  # venue order ids replaced by a newer one
    query_wanted: bool = False  # a status query failed (rate limit, network): ask again
    cancel_wanted: bool = False  # a cancel was not executed yet (rate limit): send again


__all__ = ["NO_VENUE_ACCOUNT", "BoundedSet", "OrderState", "VenueSession", "terms_of",
           "venue_terms"]
