"""TOML text -> :class:`~oms_core.config.model.OmsConfig`: every key read, checked and
converted to raw integers here; an unknown or bad key is a :class:`ConfigError` naming the
file and the dotted key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bindings.wire.spec import AUDIT_SENDER_BYTES
from gateways.sim.config import LATENCY_DISTS
from oms_core.enums import Limit, OrderType, ProtectAnchor, ProtectOnReject, TimeInForce
from oms_core.identity import KINDS, IdAllocator, IdentityError, identity_path, read_identity
from oms_core.limits import LIMIT_DEFAULTS, MAX_IDS, MAX_LIMIT, MAX_RATE, MAX_RAW

from .model import (
    SIM_PROFILES,
    AssetConfig,
    ClientConfig,
    ConfigError,
    Credentials,
    EngineConfig,
    ExchangeAccount,
    ExchangeConfig,
    Ids,
    InstrumentConfig,
    OmsConfig,
    OrderParams,
    ReplayConfig,
    SecurityConfig,
    SimProfile,
    StrategyConfig,
    UserConfig,
    WriterConfig,
    to_raw,
)

MODES = ("live", "paper", "replay")
SECURITY_MODES = ("auto", "on", "off")  # auto: on when any link of the configuration is tcp
USER_ROLES = ("admin", "trader", "viewer", "publisher")
EXCHANGE_KINDS = ("sim", "binance", "ccxt")
DIRECTIONS = ("long_only", "long_short")
ENTRY_REFS = ("open", "close")  # open of the current bar / close of the previous bar
SIZINGS = ("fixed", "balance_share", "vol_target")
EXIT_KINDS = ("none", "vol", "pct")
PROTECT_ANCHORS = {"fill": ProtectAnchor.FILL, "arrival_mid": ProtectAnchor.ARRIVAL}
PROTECT_REJECTS = {"retry": ProtectOnReject.RETRY, "flatten": ProtectOnReject.FLATTEN}
ENTRY_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT}
TIFS = {t.name.lower(): t for t in TimeInForce}
PPM = 1_000_000  # shares and weights are held as parts per million
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_KEYS = ("api_key", "api_secret", "secret", "password", "passphrase", "private_key")


def _decimals(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


class _Table:
    """One TOML table with its dotted path; reads keys, checks types, reports unknown keys."""

    def __init__(self, file: str, path: str, data: Any) -> None:
        self.file = file
        self.path = path
        if not isinstance(data, dict):
            raise ConfigError(file, path, f"must be a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = None, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "is required")
            return default
        return self.data[name]

    def table(self, name: str, required: bool = False) -> _Table:
        return _Table(self.file, self.key(name), self.raw(name, {}, required))

    def str_(self, name: str, default: str | None = None, choices: Iterable[str] = ()) -> str:
        v = self.raw(name, default, required=default is None)
        if not isinstance(v, str):
            raise self.fail(name, f"must be a string, got {v!r}")
        choices = tuple(choices)
        if choices and v not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def bool_(self, name: str, default: bool) -> bool:
        v = self.raw(name, default)
        if not isinstance(v, bool):
            raise self.fail(name, f"must be true or false, got {v!r}")
        return v

    def int_(self, name: str, default: int | None = None, lo: int = 0, hi: int = MAX_LIMIT) -> int:
        v = self.raw(name, default, required=default is None)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(name, f"must be an integer, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(name, f"must be in {lo}..{hi}, got {v}")
        return v

    def float_(self, name: str, default: float, lo: float, hi: float) -> float:
        """A number (integer or float: simulation knobs, never money) in ``lo..hi``."""
        v = self.raw(name, default)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(name, f"must be a number, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(name, f"must be in {lo:g}..{hi:g}, got {v:g}")
        return float(v)

    def dec(self, name: str, default: str | None = None, positive: bool = False) -> Decimal:
        v = self.raw(name, default, required=default is None)
        return _as_decimal(self, name, v, positive)

    def strs(self, name: str) -> tuple[str, ...]:
        v = self.raw(name, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(name, f"must be a list of names, got {v!r}")
        if len(set(v)) != len(v):
            raise self.fail(name, "lists a name twice")
        return tuple(v)

    def done(self) -> None:
        """Refuse keys nobody read: they are typos or unsupported settings."""
        for name in self.data:
            if name not in self.used:
                raise self.fail(name, "unknown key")


# keys that were read and never used: refused like any unknown key, with what to do instead
_RETIRED_KEYS: dict[str, dict[str, str]] = {
    "writer": {
        "journal_dir": "the writer reads the engine's journal: set [engine] journal_dir",
        "batch_rows": "the writer commits every flush_interval_ms: remove it",
    },
    "replay": {
        "speed": "a replay runs as fast as the machine allows; mode = \"paper\" runs in "
                 "real time: remove it",
        "seed": "a replay is deterministic, with nothing random to seed: remove it",
    },
}


def _refuse_retired(t: _Table) -> None:
    for name, instead in _RETIRED_KEYS.get(t.path, {}).items():
        if t.has(name):
            raise t.fail(name, f"is no longer read ({instead})")


def _sim_profile(e: _Table) -> SimProfile:
    """``sim_profile`` (a name of :data:`SIM_PROFILES`) with the ``sim`` table over it."""
    base = SIM_PROFILES[e.str_("sim_profile", "ideal", choices=SIM_PROFILES)]
    t = e.table("sim")
    p = SimProfile(
        name=base.name,
        latency=t.str_("latency", base.latency, choices=LATENCY_DISTS),
        latency_ms=t.float_("latency_ms", base.latency_ms, 0, 60_000),
        latency_sd_ms=t.float_("latency_sd_ms", base.latency_sd_ms, 0, 60_000),
        latency_sigma=t.float_("latency_sigma", base.latency_sigma, 0, 10),
        latency_min_ms=t.float_("latency_min_ms", base.latency_min_ms, 0, 60_000),
        latency_max_ms=t.float_("latency_max_ms", base.latency_max_ms, 0, 60_000),
        fill_probability=t.float_("fill_probability", base.fill_probability, 0, 1),
        partial_fill_probability=t.float_("partial_fill_probability",
                                          base.partial_fill_probability, 0, 1),
        fill_at_touch=t.bool_("fill_at_touch", base.fill_at_touch),
        reject_probability=t.float_("reject_probability", base.reject_probability, 0, 1),
        tick_ms=t.int_("tick_ms", base.tick_ms, lo=1, hi=60_000),
        volatility_bps=t.float_("volatility_bps", base.volatility_bps, 0, 10_000),
        market_order_probability=t.float_("market_order_probability",
                                          base.market_order_probability, 0, 1),
        spread_ticks=t.int_("spread_ticks", base.spread_ticks, lo=1, hi=10_000),
        level_qty=str(t.dec("level_qty", base.level_qty, positive=True)),
    )
    if p.latency == "uniform" and p.latency_max_ms < p.latency_min_ms:
        raise t.fail("latency_max_ms", f"must be at least latency_min_ms "
                                       f"({p.latency_min_ms:g}) for a uniform latency")
    if p.latency in ("fixed", "normal", "lognormal") and p.latency_ms == 0:
        raise t.fail("latency_ms", f"must be above 0 for a {p.latency} latency")
    t.done()
    return p


def _as_decimal(t: _Table, name: str, v: Any, positive: bool) -> Decimal:
    what = "a positive decimal" if positive else "a non-negative decimal"
    if isinstance(v, float):
        raise t.fail(name, f"must be {what} written as a string (floats are inexact), "
                           f"got {v!r}")
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise t.fail(name, f"must be {what}, got {v!r}")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise t.fail(name, f"must be {what}, got {v!r}") from None
    if not d.is_finite() or d < 0 or (positive and d == 0):
        raise t.fail(name, f"must be {what}, got {v!r}")
    return d


def _raw(t: _Table, name: str, d: Decimal, precision: int, top: int = MAX_RAW) -> int:
    try:
        r = to_raw(d, precision)
    except ValueError as e:
        raise t.fail(name, f"{d} {e} (precision {precision})") from None
    if r > top:
        raise t.fail(name, f"{d} is too large (above {top} raw units)")
    return r


def _name(t: _Table, name: str) -> None:
    if not _NAME.match(name):
        raise t.fail(name, "names must start with a letter and use letters, digits, _ . -")


# ---------------------------------------------------------------------------------- loading
def load_config(path: str | Path, identity: bool = True) -> OmsConfig:
    """Read and check one TOML configuration file; raise ConfigError on any problem.

    With ``identity`` the ids come from the identity table beside the journal when there is
    one (see the module docstring); without, in file order.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(str(p), "", f"cannot read: {e.strerror}") from None
    return parse_config(text, file=str(p), base_dir=p.parent, identity=identity)


def parse_config(text: str, file: str = "oms.toml", base_dir: str | Path = ".",
                 identity: bool = False,
                 ids: Mapping[str, Mapping[str, int]] | None = None) -> OmsConfig:
    """Check TOML text and build an :class:`OmsConfig`; ``file`` names it in errors and
    relative paths (credential files, databases) are resolved against ``base_dir``;
    ``identity``: take ids from the journal's identity table (:func:`load_config`);
    ``ids``: the id of each name given here instead (kind -> name -> id, kinds as in
    :class:`Ids`), as if an identity table had recorded them."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from None
    parser = _Parser(file, Path(base_dir), identity)
    if ids is not None:
        parser.alloc = IdAllocator({k: {n: {"id": int(i)} for n, i in ids.get(k, {}).items()}
                                    for k in KINDS}, "the given ids")
    return parser.parse(data)


class _Parser:
    def __init__(self, file: str, base_dir: Path, identity: bool = False) -> None:
        self.file = file
        self.base = base_dir
        self.ids = Ids()
        self.identity = identity
        self.alloc = IdAllocator()

    def id(self, t: _Table, kind: str, name: str, **attrs: int) -> int:
        """The id of ``name`` (a key of table ``t``), by the recorded identity table."""
        try:
            new = self.alloc.id(kind, name, **attrs)
        except IdentityError as e:
            raise t.fail(name, str(e)) from None
        getattr(self.ids, kind)[name] = new
        return new

    def path(self, value: str) -> str:
        if not value or "://" in value:
            return value
        p = Path(value)
        return str(p if p.is_absolute() else self.base / p)

    def parse(self, data: dict[str, Any]) -> OmsConfig:
        root = _Table(self.file, "", data)
        oms = root.table("oms")
        mode = oms.str_("mode", "paper", MODES)
        oms.done()
        engine = self.engine(root.table("engine"))
        if self.identity and engine.journal_dir:
            path = identity_path(engine.journal_dir)
            try:
                self.alloc = IdAllocator(read_identity(path), str(path))
            except IdentityError as e:
                raise ConfigError(self.file, "engine.journal_dir", str(e)) from None
        assets = self.assets(root.table("assets", required=True))
        exchanges = self.exchanges(root.table("exchanges", required=True))
        instruments = self.instruments(root.table("instruments", required=True), assets,
                                       exchanges)
        strategies = self.strategies(root.table("strategies", required=True), instruments)
        defaults = root.table("defaults")
        d_limits = defaults.raw("limits", {})
        d_orders = defaults.raw("orders", {})
        for sub, v in (("limits", d_limits), ("orders", d_orders)):
            if not isinstance(v, dict):
                raise defaults.fail(sub, "must be a table")
        defaults.done()
        clients = self.clients(root.table("clients", required=True), assets, instruments,
                               exchanges, strategies, d_limits, d_orders, engine)
        writer = self.writer(root.table("writer"))
        replay = self.replay(root.table("replay"))
        security = self.security(root.table("security"), clients, strategies)
        root.done()
        return OmsConfig(self.file, mode, assets, instruments, exchanges, strategies, clients,
                         engine, writer, replay, self.ids, self.alloc, security)

    # -- reference data
    def assets(self, t: _Table) -> dict[str, AssetConfig]:
        out: dict[str, AssetConfig] = {}
        for name in t.data:
            _name(t, name)
            a = t.table(name)
            precision = a.int_("precision", hi=18)
            a.done()
            out[name] = AssetConfig(name, self.id(t, "assets", name, precision=precision),
                                    precision)
        if not out:
            raise ConfigError(self.file, "assets", "at least one asset is required")
        return out

    def exchanges(self, t: _Table) -> dict[str, ExchangeConfig]:
        out: dict[str, ExchangeConfig] = {}
        for name in t.data:
            _name(t, name)
            e = t.table(name)
            out[name] = ExchangeConfig(
                name=name, id=self.id(t, "exchanges", name),
                kind=e.str_("kind", choices=EXCHANGE_KINDS),
                rest_url=e.str_("rest_url", ""), ws_url=e.str_("ws_url", ""),
                ccxt_id=e.str_("ccxt_id", ""), orders=e.str_("orders", ""),
                events=e.str_("events", ""), market_data=e.str_("market_data", ""),
                maker_fee_bps=e.int_("maker_fee_bps", 0, hi=10_000),
                taker_fee_bps=e.int_("taker_fee_bps", 0, hi=10_000),
                slippage_bps=e.int_("slippage_bps", 0, hi=10_000),
                sim=_sim_profile(e),
            )
            if out[name].kind == "ccxt" and not out[name].ccxt_id:
                raise e.fail("ccxt_id", "is required for kind = \"ccxt\"")
            e.done()
        if not out:
            raise ConfigError(self.file, "exchanges", "at least one exchange is required")
        return out

    def instruments(self, t: _Table, assets: dict[str, AssetConfig],
                    exchanges: dict[str, ExchangeConfig]) -> dict[str, InstrumentConfig]:
        out: dict[str, InstrumentConfig] = {}
        for symbol in t.data:
            _name(t, symbol)
            i = t.table(symbol)
            exchange = i.str_("exchange", next(iter(exchanges)))
            if exchange not in exchanges:
                raise i.fail("exchange", f"unknown exchange {exchange!r}")
            base, quote = i.str_("base"), i.str_("quote")
            for k, a in (("base", base), ("quote", quote)):
                if a not in assets:
                    raise i.fail(k, f"unknown asset {a!r} (not under [assets])")
            tick, lot = i.dec("tick", positive=True), i.dec("lot", positive=True)
            pp = i.int_("price_precision", _decimals(tick), hi=18)
            qp = i.int_("qty_precision", _decimals(lot), hi=18)
            qa, ba = assets[quote].precision, assets[base].precision
            if pp + qp > qa:
                raise i.fail("quote", f"asset {quote} has precision {qa}, below price "
                                      f"precision {pp} + quantity precision {qp}")
            if qp > ba:
                raise i.fail("base", f"asset {base} has precision {ba}, below quantity "
                                     f"precision {qp}")
            raw_tick = _raw(i, "tick", tick, pp)
            raw_lot = _raw(i, "lot", lot, qp)
            min_qty = _raw(i, "min_qty", i.dec("min_qty", str(lot)), qp)
            max_qty = _raw(i, "max_qty", i.dec("max_qty", positive=True), qp)
            if min_qty % raw_lot or max_qty % raw_lot:
                raise i.fail("min_qty" if min_qty % raw_lot else "max_qty",
                             f"must be a multiple of the lot {lot}")
            if max_qty < min_qty:
                raise i.fail("max_qty", "must not be below min_qty")
            min_notional = _raw(i, "min_notional", i.dec("min_notional", "0"), qa,
                                top=MAX_LIMIT)
            out[symbol] = InstrumentConfig(
                symbol=symbol, id=self.id(t, "instruments", symbol, price_precision=pp,
                                          qty_precision=qp), exchange=exchange,
                exchange_symbol=i.str_("exchange_symbol", symbol), base=base, quote=quote,
                price_precision=pp, qty_precision=qp, tick=raw_tick, lot=raw_lot,
                min_qty=min_qty, max_qty=max_qty, min_notional=min_notional,
                tradable=i.bool_("tradable", True), native_stops=i.bool_("native_stops", False),
                reference_price=_raw(i, "reference_price", i.dec("reference_price", "0"), pp),
            )
            i.done()
        if not out:
            raise ConfigError(self.file, "instruments", "at least one instrument is required")
        return out

    def strategies(self, t: _Table, instruments: dict[str, InstrumentConfig]
                   ) -> dict[str, StrategyConfig]:
        out: dict[str, StrategyConfig] = {}
        for name in t.data:
            _name(t, name)
            s = t.table(name)
            symbols = s.strs("instruments")
            if not symbols:
                raise s.fail("instruments", "a strategy must trade at least one instrument")
            for sym in symbols:
                if sym not in instruments:
                    raise s.fail("instruments", f"unknown instrument {sym!r}")
            out[name] = StrategyConfig(name, self.id(t, "strategies", name), symbols,
                                       s.bool_("single_entry", False), s.bool_("enabled", True),
                                       s.int_("bar_interval_s", 60, lo=1, hi=86_400))
            s.done()
        if not out:
            raise ConfigError(self.file, "strategies", "at least one strategy is required")
        return out

    # -- clients
    def clients(self, t: _Table, assets: dict[str, AssetConfig],
                instruments: dict[str, InstrumentConfig], exchanges: dict[str, ExchangeConfig],
                strategies: dict[str, StrategyConfig], d_limits: dict[str, Any],
                d_orders: dict[str, Any], engine: EngineConfig) -> dict[str, ClientConfig]:
        out: dict[str, ClientConfig] = {}
        for name in t.data:
            _name(t, name)
            c = t.table(name)
            follows = c.strs("strategies")
            for s in follows:
                if s not in strategies:
                    raise c.fail("strategies", f"unknown strategy {s!r}")
            traded = [instruments[sym] for s in follows for sym in strategies[s].instruments]
            currency = c.str_("currency", traded[0].quote if traded else next(iter(assets)))
            if currency not in assets:
                raise c.fail("currency", f"unknown asset {currency!r}")
            odd = sorted({i.symbol for i in traded if i.quote != currency})
            if odd:
                raise c.fail("currency", f"{currency} is not the quote asset of "
                                         f"{', '.join(odd)}; notional limits need one currency")
            cash_t = c.table("cash")
            cash = {}
            for asset in cash_t.data:
                if asset not in assets:
                    raise cash_t.fail(asset, "unknown asset")
                cash[asset] = _raw(cash_t, asset, cash_t.dec(asset), assets[asset].precision,
                                   top=MAX_LIMIT)
            cash_t.done()
            qps = {i.qty_precision for i in traded}
            merged_limits = {**d_limits, **c.raw("limits", {})}
            limits = _limits(_Table(self.file, c.key("limits"), merged_limits),
                             assets[currency].precision, qps)
            merged_orders = {**d_orders, **c.raw("orders", {})}
            orders = _orders(_Table(self.file, c.key("orders"), merged_orders), instruments,
                             traded, bool(limits[Limit.LONG_ONLY]))
            if orders.long_only and not limits[Limit.LONG_ONLY]:
                limits[Limit.LONG_ONLY] = 1
            limits[Limit.PROTECT_ANCHOR] = PROTECT_ANCHORS[orders.protect_anchor]
            limits[Limit.PROTECT_ON_REJECT] = PROTECT_REJECTS[orders.protect_reject]
            accounts = self.exchange_accounts(c.table("exchange_accounts"), exchanges, name)
            for inst in traded:
                if inst.exchange not in accounts:
                    raise c.fail("exchange_accounts", f"no account at exchange "
                                                      f"{inst.exchange!r}, which trades "
                                                      f"{inst.symbol}")
            out[name] = ClientConfig(
                name=name, id=self.id(t, "accounts", name), currency=currency,
                strategies=follows, cash=cash, limits=limits, orders=orders,
                exchange_accounts=accounts, enabled=c.bool_("enabled", True),
                shard=c.int_("shard", engine.shard, hi=1023),
                cancel_on_disconnect=c.bool_("cancel_on_disconnect", False),
            )
            c.done()
        if not out:
            raise ConfigError(self.file, "clients", "at least one client is required")
        return out

    def exchange_accounts(self, t: _Table, exchanges: dict[str, ExchangeConfig],
                          client: str) -> dict[str, ExchangeAccount]:
        out: dict[str, ExchangeAccount] = {}
        for ex in t.data:
            if ex not in exchanges:
                raise t.fail(ex, "unknown exchange")
            a = t.table(ex)
            for k in _SECRET_KEYS:
                if a.has(k):
                    raise a.fail(k, f"secrets must not be written in the configuration; "
                                    f"use {k}_env (environment variable) or {k}_file")
            key = self.credential(a, "api_key", exchanges[ex].kind != "sim")
            secret = self.credential(a, "api_secret", exchanges[ex].kind != "sim")
            out[ex] = ExchangeAccount(ex, a.str_("account", client), key, secret)
            a.done()
        return out

    def credential(self, a: _Table, what: str, required: bool) -> Credentials:
        env, file = a.str_(f"{what}_env", ""), a.str_(f"{what}_file", "")
        if env and file:
            raise a.fail(f"{what}_file", f"give {what}_env or {what}_file, not both")
        if env and not _ENV.match(env):
            raise a.fail(f"{what}_env", "must be an environment variable name")
        if required and not (env or file):
            raise a.fail(f"{what}_env", f"is required (or {what}_file)")
        return Credentials(env=env, file=self.path(file))

    # -- processes
    def engine(self, t: _Table) -> EngineConfig:
        d = EngineConfig()
        e = EngineConfig(
            shard=t.int_("shard", d.shard, hi=1023),
            commands=t.str_("commands", d.commands), signals=t.str_("signals", d.signals),
            events=t.str_("events", d.events), health=t.str_("health", d.health),
            journal_dir=self.path(t.str_("journal_dir", d.journal_dir)),
            max_orders=t.int_("max_orders", d.max_orders, lo=16, hi=1 << 24),
            max_accounts=t.int_("max_accounts", d.max_accounts, lo=1, hi=MAX_IDS),
            max_instruments=t.int_("max_instruments", d.max_instruments, lo=1, hi=1 << 16),
            max_assets=t.int_("max_assets", d.max_assets, lo=1, hi=1 << 16),
            max_strategies=t.int_("max_strategies", d.max_strategies, lo=2, hi=MAX_IDS),
            max_exchanges=t.int_("max_exchanges", d.max_exchanges, lo=1, hi=1 << 10),
            mark_interval_ms=t.int_("mark_interval_ms", d.mark_interval_ms, lo=1, hi=86_400_000),
            writer_delay_us=t.int_("writer_delay_us", d.writer_delay_us, lo=0, hi=1_000_000),
            journal_durability=t.str_("journal_durability", d.journal_durability,
                                      choices=("sync", "group", "os")),
            journal_group_us=t.int_("journal_group_us", d.journal_group_us, lo=1,
                                    hi=10_000_000),
            audit_queries=t.bool_("audit_queries", d.audit_queries),
            heartbeat_ms=t.int_("heartbeat_ms", d.heartbeat_ms, lo=1, hi=86_400_000),
            timer_ms=t.int_("timer_ms", d.timer_ms, lo=1, hi=60_000),
            writer=t.str_("writer", d.writer),
            writer_hwm=t.int_("writer_hwm", d.writer_hwm, lo=1, hi=1 << 24),
        )
        for k in ("commands", "signals", "events", "health", "writer"):
            v = getattr(e, k)
            if k in ("signals", "writer") and v == "":  # no subscription / no writer feed
                continue
            if not re.match(r"^(tcp|ipc|inproc)://.+", v):
                raise t.fail(k, f"must be a ZeroMQ endpoint (tcp://host:port, ipc://path), "
                                f"got {v!r}")
        t.done()
        return e

    def writer(self, t: _Table) -> WriterConfig:
        d = WriterConfig()
        w = WriterConfig(
            database=self.path(t.str_("database", d.database)),
            flush_interval_ms=t.int_("flush_interval_ms", d.flush_interval_ms, lo=1,
                                     hi=3_600_000),
        )
        _refuse_retired(t)
        t.done()
        return w

    def security(self, t: _Table, clients: dict[str, ClientConfig],
                 strategies: dict[str, StrategyConfig]) -> SecurityConfig:
        d = SecurityConfig()
        mode = t.str_("mode", d.mode, SECURITY_MODES)
        keys_dir = self.path(t.str_("keys_dir", d.keys_dir))
        users_t = t.table("users")
        users: dict[str, UserConfig] = {}
        for name in users_t.data:
            _name(users_t, name)
            if len(name) > AUDIT_SENDER_BYTES:  # the audit trail holds the whole name
                raise users_t.fail(name, f"a user name has at most {AUDIT_SENDER_BYTES} "
                                         "characters")
            u = users_t.table(name)
            role = u.str_("role", choices=USER_ROLES)
            who = u.strs("clients")
            for c in who:
                if c not in clients:
                    raise u.fail("clients", f"unknown client {c!r}")
            strats = u.strs("strategies")
            for st in strats:
                if st not in strategies:
                    raise u.fail("strategies", f"unknown strategy {st!r}")
            if role in ("trader", "viewer") and not who:
                raise u.fail("clients", f"a {role} acts on named clients: list them")
            if role == "publisher" and not strats:
                raise u.fail("strategies", "a publisher signals named strategies: list them")
            u.done()
            users[name] = UserConfig(name, role, who, strats)
        t.done()
        return SecurityConfig(mode, keys_dir, users)

    def replay(self, t: _Table) -> ReplayConfig:
        r = ReplayConfig(bars=self.path(t.str_("bars", "")),
                         signals=self.path(t.str_("signals", "")))
        _refuse_retired(t)
        t.done()
        return r


# ------------------------------------------------------------------------ limits and orders
# key -> (limit, kind): qty = base units at the client's quantity precision, money = units of
# the client's currency, count / bps / ticks / rate = plain integers, flag = bool,
# seconds = decimal seconds held as nanoseconds.
_LIMIT_KEYS: dict[str, tuple[Limit, str]] = {
    "max_order_qty": (Limit.MAX_ORDER_QTY, "qty"),
    "max_order_notional": (Limit.MAX_ORDER_NOTIONAL, "money"),
    "max_position": (Limit.MAX_POSITION, "qty"),
    "max_gross_exposure": (Limit.MAX_GROSS_EXPOSURE, "money"),
    "max_net_exposure": (Limit.MAX_NET_EXPOSURE, "money"),
    "max_open_orders": (Limit.MAX_OPEN_ORDERS, "count"),
    "collar_bps": (Limit.COLLAR_BPS, "count"),
    "collar_ticks": (Limit.COLLAR_TICKS, "count"),
    "collar_use_mid": (Limit.COLLAR_USE_MID, "flag"),
    "max_reference_age_s": (Limit.MAX_REFERENCE_AGE_NS, "seconds"),
    "order_rate": (Limit.ORDER_RATE, "rate"),
    "order_burst": (Limit.ORDER_BURST, "rate"),
    "message_rate": (Limit.MESSAGE_RATE, "rate"),
    "message_burst": (Limit.MESSAGE_BURST, "rate"),
    "exchange_rate": (Limit.EXCHANGE_RATE, "rate"),
    "exchange_burst": (Limit.EXCHANGE_BURST, "rate"),
    "long_only": (Limit.LONG_ONLY, "flag"),
    "check_balance": (Limit.CHECK_BALANCE, "flag"),
    "clamp_single_entry_sell": (Limit.CLAMP_SINGLE_ENTRY_SELL, "flag"),
    "max_daily_loss": (Limit.MAX_DAILY_LOSS, "money"),
    "max_drawdown": (Limit.MAX_DRAWDOWN, "money"),
    "reject_rate": (Limit.REJECT_RATE, "rate"),
    "reject_burst": (Limit.REJECT_BURST, "rate"),
}
LIMIT_KEYS: dict[Limit, str] = {lim: key for key, (lim, _) in _LIMIT_KEYS.items()}
# what unit each limit's key is written in (the kinds above)
LIMIT_KINDS: dict[Limit, str] = {lim: kind for lim, kind in _LIMIT_KEYS.values()}
# the bracket protection choices are set by [orders] keys of the same names
LIMIT_KEYS[Limit.PROTECT_ANCHOR] = "protect_anchor"
LIMIT_KEYS[Limit.PROTECT_ON_REJECT] = "protect_reject"


def _limits(t: _Table, money_precision: int, qty_precisions: set[int]) -> dict[Limit, int]:
    out = {Limit(k): v for k, v in LIMIT_DEFAULTS.items()}
    for key in t.data:
        if key not in _LIMIT_KEYS:
            raise t.fail(key, f"unknown limit (known: {', '.join(_LIMIT_KEYS)})")
        lim, kind = _LIMIT_KEYS[key]
        if kind == "flag":
            out[lim] = int(t.bool_(key, False))
        elif kind in ("count", "rate"):
            out[lim] = t.int_(key, 0, hi=MAX_RATE if kind == "rate" else MAX_LIMIT)
        elif kind == "seconds":
            out[lim] = _raw(t, key, t.dec(key), 9, top=MAX_LIMIT)
        elif kind == "money":
            out[lim] = _raw(t, key, t.dec(key, positive=True), money_precision, top=MAX_LIMIT)
        else:  # qty: one number for every instrument, so they must share a precision
            d = t.dec(key, positive=True)
            if len(qty_precisions) != 1:
                raise t.fail(key, "the client's instruments have different quantity "
                                  f"precisions {sorted(qty_precisions)}; set qty_precision "
                                  "on the instruments to one value")
            out[lim] = _raw(t, key, d, next(iter(qty_precisions)), top=MAX_LIMIT)
    t.done()
    return out


def _ppm(t: _Table, key: str, default: str = "0", top: int = 1000 * PPM) -> int:
    return _raw(t, key, t.dec(key, default), 6, top=top)


def _per_instrument(t: _Table, key: str, instruments: dict[str, InstrumentConfig],
                    traded: list[InstrumentConfig]) -> dict[int, int]:
    v = t.raw(key, None)
    if v is None:
        return {}
    if isinstance(v, dict):
        sub = _Table(t.file, t.key(key), v)
        out = {}
        for sym in v:
            if sym not in instruments:
                raise sub.fail(sym, "unknown instrument")
            inst = instruments[sym]
            out[inst.id] = _lot_raw(sub, sym, sub.dec(sym, positive=True), inst)
        sub.done()
        return out
    d = _as_decimal(t, key, v, positive=True)
    return {inst.id: _lot_raw(t, key, d, inst) for inst in traded}


def _lot_raw(t: _Table, key: str, d: Decimal, inst: InstrumentConfig) -> int:
    r = _raw(t, key, d, inst.qty_precision)
    if r % inst.lot:
        raise t.fail(key, f"{d} is not a multiple of the lot of {inst.symbol}")
    return r


def _orders(t: _Table, instruments: dict[str, InstrumentConfig],
            traded: list[InstrumentConfig], limit_long_only: bool) -> OrderParams:
    default_dir = "long_only" if limit_long_only else "long_short"
    direction = t.str_("direction", default_dir, DIRECTIONS)
    if limit_long_only and direction != "long_only":
        raise t.fail("direction", "conflicts with limits.long_only = true")
    sizing = t.str_("sizing", "fixed", SIZINGS)
    p = OrderParams(
        long_only=direction == "long_only",
        entry_type=ENTRY_TYPES[t.str_("entry", "market", ENTRY_TYPES)],
        entry_ref=t.str_("entry_price", "close", ENTRY_REFS),
        offset_ticks=t.int_("limit_offset_ticks", 0, hi=1_000_000),
        offset_bps=t.int_("limit_offset_bps", 0, hi=5_000),
        sizing=sizing,
        fixed_qty=_per_instrument(t, "fixed_qty", instruments, traded),
        balance_share_ppm=_ppm(t, "balance_share", top=100 * PPM),
        vol_target_ppm=_ppm(t, "vol_target", top=PPM),
        max_qty=_per_instrument(t, "max_qty", instruments, traded),
        vol_window=t.int_("vol_window", 20, lo=2, hi=100_000),
        take_profit=t.str_("take_profit", "none", EXIT_KINDS),
        take_profit_ppm=_ppm(t, "take_profit_value"),
        stop_loss=t.str_("stop_loss", "none", EXIT_KINDS),
        stop_loss_ppm=_ppm(t, "stop_loss_value"),
        tif=TIFS[t.str_("time_in_force", "gtc", TIFS)],
        expire_after_ns=_raw(t, "expire_after_s", t.dec("expire_after_s", "0"), 9,
                             top=MAX_LIMIT),
        protect_anchor=t.str_("protect_anchor", "fill", PROTECT_ANCHORS),
        protect_reject=t.str_("protect_reject", "retry", PROTECT_REJECTS),
    )
    needs: list[tuple[bool, str, str]] = [
        (sizing == "fixed", "fixed_qty", "sizing = \"fixed\" needs fixed_qty"),
        (sizing == "balance_share", "balance_share",
         "sizing = \"balance_share\" needs a positive balance_share"),
        (sizing == "vol_target", "vol_target", "sizing = \"vol_target\" needs a positive "
                                               "vol_target"),
        (p.take_profit != "none", "take_profit_value", "needs a positive value"),
        (p.stop_loss != "none", "stop_loss_value", "needs a positive value"),
        (p.tif == TimeInForce.GTD, "expire_after_s", "time_in_force = \"gtd\" needs it"),
    ]
    values = {"fixed_qty": bool(p.fixed_qty), "balance_share": p.balance_share_ppm,
              "vol_target": p.vol_target_ppm, "take_profit_value": p.take_profit_ppm,
              "stop_loss_value": p.stop_loss_ppm, "expire_after_s": p.expire_after_ns}
    for cond, key, problem in needs:
        if cond and not values[key]:
            raise t.fail(key, problem)
    if sizing == "fixed":
        missing = [i.symbol for i in traded if i.id not in p.fixed_qty]
        if missing:
            raise t.fail("fixed_qty", f"no size for {', '.join(missing)}")
    if p.stop_loss == "pct" and p.stop_loss_ppm >= PPM:
        raise t.fail("stop_loss_value", "a percentage stop must be below 1 (100%)")
    if p.entry_type == OrderType.MARKET and (p.offset_ticks or p.offset_bps):
        raise t.fail("limit_offset_ticks" if p.offset_ticks else "limit_offset_bps",
                     "only applies to entry = \"limit\"")
    t.done()
    return p


