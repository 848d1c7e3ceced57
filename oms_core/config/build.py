"""What is checked and built once the configuration is parsed: credentials readable, the
optional packages of the configured venues installed, and the core loaded with its state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from oms_core.enums import KillMode

from .model import ConfigError, OmsConfig
from .parse import LIMIT_KEYS

if TYPE_CHECKING:
    from oms_core.core import OmsCore


def check_credentials(cfg: OmsConfig, exchanges: Iterable[str] | None = None) -> None:
    """Check that every credential of the given exchanges (default: all that are not ``sim``)
    can be read; raise ConfigError naming the key, never the value."""
    wanted = set(exchanges) if exchanges is not None else {
        e.name for e in cfg.exchanges.values() if e.kind != "sim"}
    for client in cfg.clients.values():
        for ex, acct in client.exchange_accounts.items():
            if ex not in wanted:
                continue
            for what, cred in (("api_key", acct.api_key), ("api_secret", acct.api_secret)):
                key = (f"clients.{client.name}.exchange_accounts.{ex}."
                       f"{what}_{'file' if cred.file else 'env'}")
                try:
                    cred.load()
                except RuntimeError as e:
                    raise ConfigError(cfg.file, key, str(e)) from None


def check_extras(cfg: OmsConfig) -> None:
    """Check that the optional packages the configured venues need are installed; raise
    ConfigError naming the exchange and the extra to install."""
    from gateways.config import CCXT_EXTRA_HINT, ccxt_installed

    for ex in cfg.exchanges.values():
        if ex.kind == "ccxt" and not ccxt_installed():
            raise ConfigError(cfg.file, f"exchanges.{ex.name}.kind",
                              f"\"ccxt\" {CCXT_EXTRA_HINT}")


# ---------------------------------------------------------------------------------- the core
def build_core(cfg: OmsConfig, shard: int | None = None,
               core_factory: Callable[..., OmsCore] | None = None) -> OmsCore:
    """Return an OmsCore configured from ``cfg``: assets, instruments, strategies, accounts
    (only the clients of ``shard`` when given), their limits, cash and kill switches."""
    from oms_core.core import OmsCore

    e = cfg.engine
    def top(ids: dict[str, int]) -> int:  # ids by name need not be dense: the largest counts
        return max(ids.values(), default=-1) + 1

    sizes = {"max_accounts": (top(cfg.ids.accounts), e.max_accounts),
             "max_instruments": (top(cfg.ids.instruments), e.max_instruments),
             "max_assets": (top(cfg.ids.assets), e.max_assets),
             "max_strategies": (top(cfg.ids.strategies), e.max_strategies),
             "max_exchanges": (top(cfg.ids.exchanges), e.max_exchanges)}
    for key, (need, have) in sizes.items():
        if need > have:
            raise ConfigError(cfg.file, f"engine.{key}", f"is {have}, but {need} are configured")
    core = (core_factory or OmsCore)(
        max_orders=e.max_orders, max_accounts=e.max_accounts,
        max_instruments=e.max_instruments, max_assets=e.max_assets,
        max_strategies=e.max_strategies, max_exchanges=e.max_exchanges)
    for a in cfg.assets.values():
        core.add_asset(a.id, a.name, a.precision)
    for i in cfg.instruments.values():
        core.add_instrument(i.id, i.symbol, cfg.exchanges[i.exchange].id, cfg.assets[i.base].id,
                            cfg.assets[i.quote].id, i.price_precision, i.qty_precision, i.tick,
                            i.lot, i.min_qty, i.max_qty, i.min_notional, i.tradable,
                            i.native_stops)
        if i.reference_price:
            p = i.reference_price
            core.set_price(i.id, p, p, p, 0)
    for s in cfg.strategies.values():
        core.add_strategy(s.id, s.single_entry)
        if not s.enabled:
            core.set_kill(2, s.id, KillMode.HALT)
    for c in cfg.clients.values():
        if shard is not None and c.shard != shard:
            continue
        core.add_account(c.id)
        for lim, value in c.limits.items():
            code = core.set_limit(c.id, int(lim), value)
            if code:
                raise ConfigError(cfg.file, f"clients.{c.name}.limits.{LIMIT_KEYS[lim]}",
                                  f"refused by the core (code {code})")
        for asset, amount in c.cash.items():
            core.deposit(c.id, cfg.assets[asset].id, amount)
        if not c.enabled:
            core.set_kill(1, c.id, KillMode.HALT)
    return core
