"""Fault injection state, shared by the server and set through ``POST /_sim/fault``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Faults:
    """What the next requests / stream messages suffer. Counters decrement as they fire."""

    rate_limit_next: int = 0  # answer the next N REST requests with 429
    lose_ack_next: int = 0  # place (or cancelReplace) the next N orders, drop the response
    lose_ack_mode: str = "drop"  # drop: close the connection | timeout: hang lose_ack_s first
    lose_ack_s: float = 30.0
    delay_orders_next: int = 0  # the next N new orders wait delay_orders_s before placement
    delay_orders_s: float = 0.5
    depth_skip_next: int = 0  # the next N depth events jump the update id by depth_skip_by
    depth_skip_by: int = 5
    depth_reorder_next: int = 0  # the next N pairs of depth events go out swapped
    stall_until: float = 0.0  # monotonic time until which no stream message is sent
    reject_probability: float = 0.0  # random -2010 on new orders

    def apply(self, d: dict[str, Any]) -> list[str]:
        """Apply an admin request; return the names of the faults set.

        Accepted keys: ``rate_limit`` (int), ``lose_ack`` (int), ``lose_ack_mode``,
        ``lose_ack_s``, ``delay_orders`` (int), ``delay_orders_s``, ``depth_skip`` (int),
        ``depth_skip_by``, ``depth_reorder`` (int),
        ``stall_ws_s`` (seconds), ``reject_probability``; ``drop_ws`` is handled by the server.
        """
        done = []
        if "rate_limit" in d:
            self.rate_limit_next = int(d["rate_limit"])
            done.append("rate_limit")
        if "lose_ack" in d:
            self.lose_ack_next = int(d["lose_ack"])
            done.append("lose_ack")
        if "lose_ack_mode" in d:
            if d["lose_ack_mode"] not in ("drop", "timeout"):
                raise ValueError("lose_ack_mode must be 'drop' or 'timeout'")
            self.lose_ack_mode = d["lose_ack_mode"]
        if "lose_ack_s" in d:
            self.lose_ack_s = float(d["lose_ack_s"])
        if "delay_orders" in d:
            self.delay_orders_next = int(d["delay_orders"])
            done.append("delay_orders")
        if "delay_orders_s" in d:
            self.delay_orders_s = float(d["delay_orders_s"])
        if "depth_skip" in d:
            self.depth_skip_next = int(d["depth_skip"])
            done.append("depth_skip")
        if "depth_skip_by" in d:
            self.depth_skip_by = max(1, int(d["depth_skip_by"]))
        if "depth_reorder" in d:
            self.depth_reorder_next = int(d["depth_reorder"])
            done.append("depth_reorder")
        if "stall_ws_s" in d:
            self.stall_until = time.monotonic() + float(d["stall_ws_s"])
            done.append("stall_ws")
        if "reject_probability" in d:
            self.reject_probability = float(d["reject_probability"])
            done.append("reject_probability")
        return done

    def clear(self) -> None:
        """Switch every fault off."""
        fresh = Faults()
        for name in Faults.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(fresh, name))
