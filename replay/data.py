"""Historical data for replay: bars and signals from Parquet or CSV, and synthetic minute bars.

Cold code (pyarrow + numpy, no Python loops over rows). Every table this module returns holds
raw fixed-point integers:

* bars: ``ts`` (int64 ns, bar open time), ``instrument`` (int32 id), ``open``, ``high``,
  ``low``, ``close`` (int64 raw prices), ``volume`` (int64 raw quantity); sorted by
  (ts, instrument).
* signals: ``ts`` (int64 ns), ``strategy`` (int32 id), ``instrument`` (int32 id), ``kind``
  (int8, :class:`bindings.wire.spec.SignalMode`), ``value`` (int64); sorted by ts, file order
  kept among equal times.

Decimal prices in a file (strings, or Parquet decimals) are converted exactly at the given
precision through Arrow's decimal128 (a value with more decimals is refused, never rounded);
float columns are refused. Names (``symbol`` / ``strategy`` strings) are mapped to ids with the
maps of the configuration (:class:`oms_core.config.Ids`).

:func:`generate_minute_bars` makes a deterministic seeded random walk of minute bars for N
instruments; :func:`write_bars` stores it as Parquet (one year x 10 instruments, ~5.3M bars,
in a few seconds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bindings.wire.spec import SignalMode

__all__ = [
    "BAR_SCHEMA", "SIGNAL_SCHEMA", "DataError", "generate_minute_bars", "load_bars", "load_signals",
    "write_bars",
]

NS_PER_MINUTE = 60_000_000_000
PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("instrument", pa.int32()), ("open", pa.int64()),
    ("high", pa.int64()), ("low", pa.int64()), ("close", pa.int64()), ("volume", pa.int64()),
])
SIGNAL_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("strategy", pa.int32()), ("instrument", pa.int32()),
    ("kind", pa.int8()), ("value", pa.int64()),
])
SIGNAL_KINDS = {mode.name.lower(): int(mode) for mode in SignalMode}


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the column."""


# ------------------------------------------------------------------------------ generation
def generate_minute_bars(n_instruments: int, start: str | datetime, end: str | datetime,
                         seed: int = 1, start_prices: Sequence[int] | None = None,
                         tick: int = 1, vol_bps: float = 5.0, lot_volume: int = 1_000
                         ) -> pa.Table:
    """Return seeded random-walk minute bars for ``n_instruments`` over [start, end).

    Parameters
    ----------
    n_instruments : int
        Instruments get ids 0 .. n-1.
    start, end : str or datetime
        ISO dates or datetimes (UTC); bars open every minute from ``start`` up to ``end``.
    seed : int
        Same seed, same bars, bit for bit.
    start_prices : sequence of int, optional
        Raw first prices (default 100.00, 200.00, ... at 2 decimals: 10000 * (i + 1)).
    tick : int
        Raw tick; every price is a positive multiple of it.
    vol_bps : float
        Standard deviation of one minute's log return, in basis points.
    lot_volume : int
        Mean raw volume per bar.
    """
    t0, t1 = _ns(start), _ns(end)
    n_bars = (t1 - t0) // NS_PER_MINUTE
    if n_instruments <= 0 or n_bars <= 0:
        raise ValueError("need at least one instrument and one minute")
    p0 = np.asarray(start_prices if start_prices is not None
                    else [10_000 * (i + 1) for i in range(n_instruments)], dtype=np.int64)
    if p0.shape != (n_instruments,) or np.any(p0 <= 0):
        raise ValueError("start_prices: one positive raw price per instrument")
    rng = np.random.default_rng(seed)
    shape = (n_bars, n_instruments)
    sigma = vol_bps / 10_000.0
    steps = rng.standard_normal(shape, dtype=np.float64)
    steps *= sigma
    log_close = np.cumsum(steps, axis=0)
    log_close += np.log(p0.astype(np.float64))
    close = _to_ticks(np.exp(log_close), tick)
    del log_close
    open_ = np.empty_like(close)
    open_[0] = _to_ticks(p0.astype(np.float64), tick)
    open_[1:] = close[:-1]
    # wicks: half-normal excursions beyond the body, in the same volatility units
    wick = np.abs(rng.standard_normal((2,) + shape, dtype=np.float64))
    wick *= sigma * 0.5
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    high = np.maximum(body_hi, _to_ticks(body_hi * (1.0 + wick[0]), tick))
    low = np.minimum(body_lo, _to_ticks(body_lo * (1.0 - wick[1]), tick))
    del wick
    volume = (rng.exponential(lot_volume, shape) + 1).astype(np.int64)
    ts = np.repeat(t0 + np.arange(n_bars, dtype=np.int64) * NS_PER_MINUTE, n_instruments)
    inst = np.tile(np.arange(n_instruments, dtype=np.int32), n_bars)
    table = pa.Table.from_arrays(
        [pa.array(ts), pa.array(inst), pa.array(open_.ravel()), pa.array(high.ravel()),
         pa.array(low.ravel()), pa.array(close.ravel()), pa.array(volume.ravel())],
        schema=BAR_SCHEMA)
    meta = {"generator": "replay.data.generate_minute_bars", "seed": seed,
            "n_instruments": n_instruments, "start": t0, "end": t1, "tick": tick,
            "vol_bps": vol_bps}
    return table.replace_schema_metadata({"oms": json.dumps(meta)})


def _to_ticks(prices: np.ndarray, tick: int) -> np.ndarray:
    t = np.rint(prices / tick).astype(np.int64)
    np.maximum(t, 1, out=t)
    t *= tick
    return t


def _ns(t: str | datetime) -> int:
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def write_bars(table: pa.Table, path: str | Path, compression: str = "zstd") -> Path:
    """Write bars to Parquet (atomically: a temporary file renamed into place)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    pq.write_table(table, tmp, compression=compression, row_group_size=1 << 20)
    tmp.replace(p)
    return p


# --------------------------------------------------------------------------------- loading
def _read(path: Path, text_columns: Sequence[str]) -> pa.Table:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.read_table(path)
    if path.suffix.lower() in (".csv", ".txt") or path.name.endswith(".csv.gz"):
        # read price-like columns as text so that decimals are converted exactly
        opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in text_columns})
        try:
            return pacsv.read_csv(path, convert_options=opts)
        except pa.ArrowInvalid as e:
            raise DataError(f"{path}: {e}") from None
    raise DataError(f"{path}: unknown format (use .parquet or .csv)")


def _raw_column(path: Path, table: pa.Table, name: str, precision: int | None,
                by_instrument: tuple[np.ndarray, Mapping[int, int]] | None = None
                ) -> np.ndarray:
    """The raw integers of column ``name``: integers as they are, decimals converted exactly
    at ``precision``, or, with ``by_instrument`` = (each row's instrument id, id ->
    precision), at the precision of each row's instrument."""
    if name not in table.column_names:
        raise DataError(f"{path}: column {name!r} missing")
    col = table.column(name).combine_chunks()
    if col.null_count:
        raise DataError(f"{path}: column {name!r} has {col.null_count} empty values")
    t = col.type
    if pa.types.is_integer(t):
        return col.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_floating(t):
        raise DataError(f"{path}: column {name!r} is float; store raw integers or decimal "
                        "strings (floats are inexact)")
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_decimal(t)):
        raise DataError(f"{path}: column {name!r} has unsupported type {t}")
    if by_instrument is None:
        if precision is None:
            raise DataError(f"{path}: column {name!r} holds decimals; give its precision")
        return _decimals(path, name, col, precision)
    ids, precision_of = by_instrument
    missing = sorted(set(np.unique(ids).tolist()) - set(precision_of))
    if missing:
        raise DataError(f"{path}: column {name!r}: no precision for instrument ids {missing[:5]}")
    out = np.empty(len(col), dtype=np.int64)
    for prec in sorted(set(precision_of.values())):
        rows = np.isin(ids, [i for i, q in precision_of.items() if q == prec])
        if rows.any():
            out[rows] = _decimals(path, name, col.filter(pa.array(rows)), prec)
    return out


def _decimals(path: Path, name: str, col: pa.Array, precision: int) -> np.ndarray:
    """Decimal strings or Arrow decimals -> raw int64 at ``precision``, exactly (a value with
    more decimals than that is refused, never rounded)."""
    try:
        dec = pc.cast(col if pa.types.is_decimal(col.type) else pc.utf8_trim_whitespace(col),
                      pa.decimal128(38, precision))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(f"{path}: column {name!r}: not exact decimals at precision "
                        f"{precision}: {e}") from None
    words = np.frombuffer(dec.buffers()[1], dtype="<i8").reshape(-1, 2)
    words = words[dec.offset:dec.offset + len(dec)]
    low, high = words[:, 0], words[:, 1]
    if np.any(high != (low >> 63)):
        raise DataError(f"{path}: column {name!r}: a value does not fit int64")
    return low.copy()


def _ts_column(path: Path, table: pa.Table) -> np.ndarray:
    if "ts" not in table.column_names:
        raise DataError(f"{path}: column 'ts' missing")
    col = table.column("ts").combine_chunks()
    if col.null_count:
        raise DataError(f"{path}: column 'ts' has empty values")
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
    elif pa.types.is_string(col.type):
        try:
            col = pc.cast(pc.cast(col, pa.timestamp("ns")), pa.int64())
        except pa.ArrowInvalid as e:
            raise DataError(f"{path}: column 'ts': {e}") from None
    elif not pa.types.is_integer(col.type):
        raise DataError(f"{path}: column 'ts' must be int64 ns or a timestamp, got {col.type}")
    return col.to_numpy().astype(np.int64, copy=False)


def _ids(path: Path, table: pa.Table, column: str, alt: str,
         names: Mapping[str, int] | None) -> np.ndarray:
    for name in (column, alt):
        if name not in table.column_names:
            continue
        col = table.column(name).combine_chunks()
        if pa.types.is_integer(col.type):
            return col.to_numpy().astype(np.int32)
        if pa.types.is_string(col.type) and pc.all(
                pc.match_substring_regex(col, r"^\s*\d+\s*$")).as_py():
            return pc.cast(pc.utf8_trim_whitespace(col), pa.int32()).to_numpy()
        if names is None:
            raise DataError(f"{path}: column {name!r} holds names; give the name -> id map")
        uniq = pc.unique(col).to_pylist()
        unknown = [u for u in uniq if u not in names]
        if unknown:
            raise DataError(f"{path}: column {name!r}: unknown {unknown[:5]}")
        keys = pa.array(list(names.keys()))
        idx = pc.index_in(col, value_set=keys).to_numpy(zero_copy_only=False)
        return np.asarray(list(names.values()), dtype=np.int32)[idx]
    raise DataError(f"{path}: column {column!r} (or {alt!r}) missing")


def load_bars(path: str | Path, price_precision: int | None = None,
              qty_precision: int | None = None,
              instruments: Mapping[str, int] | None = None,
              precisions: Mapping[int, tuple[int, int]] | None = None) -> pa.Table:
    """Load bars from Parquet or CSV into :data:`BAR_SCHEMA`, sorted by (ts, instrument).

    ``instrument`` may be an integer id column, or names in ``instrument`` / ``symbol``
    mapped with ``instruments``. Prices and volume may be raw integers, or decimals (strings,
    Parquet decimals) converted exactly at each instrument's (price, quantity) precision
    from ``precisions`` (id -> pair), or else at ``price_precision`` / ``qty_precision``.
    """
    p = Path(path)
    t = _read(p, PRICE_COLUMNS + ("volume", "symbol", "instrument"))
    ids = _ids(p, t, "instrument", "symbol", instruments)
    cols = {"ts": _ts_column(p, t), "instrument": ids}
    price_of = None if precisions is None else (ids, {i: q[0] for i, q in precisions.items()})
    qty_of = None if precisions is None else (ids, {i: q[1] for i, q in precisions.items()})
    for c in PRICE_COLUMNS:
        cols[c] = _raw_column(p, t, c, price_precision, price_of)
    cols["volume"] = (_raw_column(p, t, "volume", qty_precision, qty_of)
                      if "volume" in t.column_names else np.zeros(t.num_rows, dtype=np.int64))
    if np.any(cols["low"] <= 0) or np.any(cols["low"] > cols["high"]) or np.any(
            (cols["open"] > cols["high"]) | (cols["open"] < cols["low"])
            | (cols["close"] > cols["high"]) | (cols["close"] < cols["low"])):
        raise DataError(f"{p}: bars with low <= 0 or open/close outside [low, high]")
    order = np.lexsort((cols["instrument"], cols["ts"]))
    arrays = [pa.array(cols[f.name][order], type=f.type) for f in BAR_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=BAR_SCHEMA)


def _signal_values(path: Path, table: pa.Table, inst: np.ndarray,
                   qty_precisions: Mapping[int, int] | None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Signal values as raw integers, and which rows were written as decimals (None when the
    column holds integers)."""
    if "value" not in table.column_names:
        raise DataError(f"{path}: column 'value' missing")
    col = table.column("value").combine_chunks()
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            or pa.types.is_decimal(col.type)):
        return _raw_column(path, table, "value", None), None
    if pa.types.is_decimal(col.type):
        decimal_rows = np.ones(len(col), dtype=bool)
    else:
        decimal_rows = pc.match_substring(col, ".").to_numpy(zero_copy_only=False)
    if not decimal_rows.any():
        return _raw_column(path, table, "value", 0), decimal_rows
    if qty_precisions is None:
        raise DataError(f"{path}: column 'value' holds decimals; give the quantity precisions")
    out = np.empty(len(col), dtype=np.int64)
    whole = pa.array(~decimal_rows)
    out[~decimal_rows] = _decimals(path, "value", col.filter(whole), 0)
    part = pa.table({"value": col.filter(pa.array(decimal_rows))})
    out[decimal_rows] = _raw_column(path, part, "value", None,
                                    (inst[decimal_rows], qty_precisions))
    return out, decimal_rows


def load_signals(path: str | Path, strategies: Mapping[str, int] | None = None,
                 instruments: Mapping[str, int] | None = None,
                 qty_precisions: Mapping[int, int] | None = None) -> pa.Table:
    """Load signals from Parquet or CSV into :data:`SIGNAL_SCHEMA`, stably sorted by ts.

    Columns: ``ts``, ``strategy`` (id or name), ``instrument`` or ``symbol`` (id or name),
    ``value``, optional ``kind`` (1/2/3 or direction / target_qty / target_weight; default
    direction). Direction values must be -1, 0 or 1; a target weight is in parts per million
    (integer); a target quantity is raw, or a decimal converted exactly at the instrument's
    quantity precision from ``qty_precisions`` (id -> precision).
    """
    p = Path(path)
    t = _read(p, ("strategy", "symbol", "instrument", "kind", "value"))
    ts = _ts_column(p, t)
    strategy = _ids(p, t, "strategy", "strategy_id", strategies)
    inst = _ids(p, t, "instrument", "symbol", instruments)
    value, decimal_values = _signal_values(p, t, inst, qty_precisions)
    if "kind" in t.column_names:
        kcol = t.column("kind").combine_chunks()
        if pa.types.is_integer(kcol.type):
            kind = kcol.to_numpy().astype(np.int8)
        else:
            kind = _ids(p, t, "kind", "kind", SIGNAL_KINDS).astype(np.int8)
        if not np.all(np.isin(kind, list(SIGNAL_KINDS.values()))):
            raise DataError(f"{p}: column 'kind' must be one of "
                            f"{', '.join(map(str, SIGNAL_KINDS.values()))}")
    else:
        kind = np.ones(t.num_rows, dtype=np.int8)
    bad = (kind == SignalMode.DIRECTION) & ((value < -1) | (value > 1))
    if np.any(bad):
        raise DataError(f"{p}: column 'value': direction signals must be -1, 0 or 1 "
                        f"(row {int(np.argmax(bad))})")
    if decimal_values is not None and np.any((kind != SignalMode.TARGET_QTY) & decimal_values):
        raise DataError(f"{p}: column 'value': only target_qty signals take decimals (row "
                        f"{int(np.argmax((kind != SignalMode.TARGET_QTY) & decimal_values))})")
    order = np.argsort(ts, kind="stable")
    cols = {"ts": ts, "strategy": strategy, "instrument": inst, "kind": kind, "value": value}
    arrays = [pa.array(cols[f.name][order], type=f.type) for f in SIGNAL_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SIGNAL_SCHEMA)
