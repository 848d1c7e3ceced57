"""Names of clients, strategies and instruments, their ids and precisions, for the clients.

Cold code. :class:`Names` is what :class:`bindings.client.OmsClient` needs to let a caller
speak in names and decimals: ``client="alice"``, ``instrument="BTCUSDT"``, ``"0.5"``. It is
learned from the OMS configuration (:func:`oms_core.config.load_config`, which gives every
name the id recorded beside the journal), so a publisher never writes a raw id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bindings.decimals import from_raw, to_raw

__all__ = ["Names"]

Number = int | str | Decimal


@dataclass(frozen=True, slots=True)
class Names:
    """Name -> id maps and instrument precisions ``{id: (price_decimals, qty_decimals)}``."""

    accounts: Mapping[str, int] = field(default_factory=dict)  # client name -> account id
    strategies: Mapping[str, int] = field(default_factory=dict)
    instruments: Mapping[str, int] = field(default_factory=dict)
    precisions: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    shards: Mapping[str, int] = field(default_factory=dict)  # client name -> engine shard
    commands: str = ""  # the engine's command endpoint of shard 0

    @classmethod
    def from_config(cls, config: Any) -> Names:
        """From an ``OmsConfig`` or the path of an OMS TOML file."""
        if isinstance(config, str | os.PathLike):
            from oms_core.config import load_config

            config = load_config(config)
        return cls(
            accounts=dict(config.ids.accounts), strategies=dict(config.ids.strategies),
            instruments=dict(config.ids.instruments),
            precisions={i.id: (i.price_precision, i.qty_precision)
                        for i in config.instruments.values()},
            shards={c.name: c.shard for c in config.clients.values()},
            commands=config.engine.commands)

    # -- names to ids -------------------------------------------------------------------
    def account(self, v: str | int) -> int:
        return self._id("client", self.accounts, v)

    def strategy(self, v: str | int) -> int:
        return self._id("strategy", self.strategies, v)

    def instrument(self, v: str | int) -> int:
        return self._id("instrument", self.instruments, v)

    @staticmethod
    def _id(what: str, ids: Mapping[str, int], v: str | int) -> int:
        if isinstance(v, bool):
            raise TypeError(f"a {what} is a name or an id, got {v!r}")
        if isinstance(v, int):
            return v
        try:
            return ids[v]
        except KeyError:
            known = ", ".join(sorted(ids)) or "none known: pass config= to the client"
            raise KeyError(f"unknown {what} {v!r} (known: {known})") from None

    # -- ids to names ---------------------------------------------------------------------
    def client_name(self, account: int) -> str:
        return _name(self.accounts, account)

    def strategy_name(self, strategy: int) -> str:
        return _name(self.strategies, strategy)

    def instrument_name(self, instrument: int) -> str:
        return _name(self.instruments, instrument)

    # -- decimals -------------------------------------------------------------------------
    def raw(self, instrument: int, v: Number, which: int) -> int:
        """``v`` as a raw int at the instrument's price (0) or quantity (1) precision."""
        if isinstance(v, bool | float):
            raise TypeError("prices and quantities are raw ints, decimal strings or Decimal")
        if isinstance(v, int):
            return v
        prec = self.precisions.get(instrument)
        if prec is None:
            raise ValueError(f"no precisions known for instrument {instrument}: pass raw ints, "
                             "or config= / precisions= to the client")
        return to_raw(v, prec[which])

    def decimal(self, instrument: int, raw: int, which: int) -> Decimal:
        """A raw price (0) or quantity (1) of ``instrument`` as an exact Decimal."""
        prec = self.precisions.get(instrument)
        if prec is None:
            raise ValueError(f"no precisions known for instrument {instrument}")
        return Decimal(from_raw(raw, prec[which]))


def _name(ids: Mapping[str, int], id_: int) -> str:
    for name, value in ids.items():
        if value == id_:
            return name
    return str(id_)
