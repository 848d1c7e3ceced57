"""DuckDB side of the writer: schema, batched Arrow inserts, the committed sequence, export.

Each engine event record type has a table whose columns are the record's fields (header
``seq``, ``request_id``, ``send_ns``, ``flags`` then the body, padding left out); see
docs/schema.md. A flush inserts every pending batch through Arrow and moves
``writer_state.last_seq`` in ONE transaction: after a crash the database holds every event up
to ``last_seq`` exactly once and nothing after it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from bindings.wire import records as wire
from bindings.wire.spec import AuditOutcome, MsgType, Role, WireError
from oms_core.enums import OrderStatus, Reject

log = logging.getLogger("writer")

# event record type -> table
TABLES: dict[int, str] = {
    MsgType.ORDER_UPDATE: "orders",
    MsgType.FILL: "executions",
    MsgType.POSITION_UPDATE: "positions",
    MsgType.BALANCE_UPDATE: "balances",
    MsgType.SIGNAL: "signals",
    MsgType.REJECT: "risk_rejects",
    MsgType.RISK_ALERT: "alerts",
    MsgType.ACK: "acks",
    MsgType.TRADE_CLOSED: "trades_closed",
    MsgType.KILL_STATE: "kill_states",
    MsgType.LIMIT_UPDATE: "limits",
    MsgType.AUDIT: "audit",
}
_SKIP = {"magic", "version", "msg_type", "length"}
# fixed byte arrays that hold text (UTF-8, NUL padded): VARCHAR columns
_TEXT = {(MsgType.AUDIT, "sender")}
_SQL_TYPES = {"u1": "UTINYINT", "u2": "USMALLINT", "u4": "UINTEGER", "u8": "UBIGINT",
              "i1": "TINYINT", "i2": "SMALLINT", "i4": "INTEGER", "i8": "BIGINT"}


class StoreError(RuntimeError):
    """The database cannot be used (locked by another process, disk full, ...)."""


@dataclass(frozen=True)
class TableSpec:
    msg_type: int
    name: str
    size: int
    dtype: np.dtype
    columns: tuple[str, ...]
    time_column: str
    text_columns: frozenset[str] = frozenset()


def _spec(msg_type: int, name: str) -> TableSpec:
    codec = wire.CODECS_BY_TYPE[msg_type]
    cols = tuple(n for n in codec.dtype.names if n not in _SKIP)
    tcol = "event_ns" if "event_ns" in cols else "send_ns"
    text = frozenset(c for m, c in _TEXT if m == msg_type)
    return TableSpec(msg_type, name, codec.size, codec.dtype, cols, tcol, text)


SPECS: dict[int, TableSpec] = {mt: _spec(mt, name) for mt, name in TABLES.items()}


def _col_sql(dt: np.dtype, col: str, text: frozenset[str] = frozenset()) -> str:
    if col in text:
        return f'"{col}" VARCHAR'
    base = dt.fields[col][0]
    if base.subdtype is not None:  # fixed arrays (none in event records today)
        sub, shape = base.subdtype
        return f'"{col}" {_SQL_TYPES[sub.str[1:]]}[{shape[0]}]'
    return f'"{col}" {_SQL_TYPES[base.str[1:]]}'


def name_tables_sql() -> list[str]:
    """The code -> name tables of the enumerations stored as integers (``order_statuses``
    for ``orders.status``), rewritten at every open from the one definition in
    oms_core.enums, and ``order_states``: each order's latest status by name."""
    rows = ", ".join(f"({int(s)}, '{s.name}')" for s in OrderStatus)
    return [
        "CREATE OR REPLACE TABLE order_statuses (code UTINYINT PRIMARY KEY, name VARCHAR)",
        f"INSERT INTO order_statuses VALUES {rows}",
        *_names_sql("command_types", MsgType, "USMALLINT"),
        *_names_sql("reject_reasons", Reject, "USMALLINT"),
        *_names_sql("audit_outcomes", AuditOutcome, "UTINYINT"),
        *_names_sql("roles", Role, "UTINYINT"),
        f"CREATE OR REPLACE VIEW audit_trail AS {AUDIT_TRAIL_SQL}",
        "CREATE OR REPLACE VIEW order_states AS SELECT o.order_id, o.account, o.instrument, "
        "o.filled, o.event_ns, o.status, s.name AS status_name FROM (SELECT * FROM orders "
        "QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY seq DESC) = 1) o "
        "LEFT JOIN order_statuses s ON s.code = o.status",
    ]


def _names_sql(view: str, enum: type, sql_type: str) -> list[str]:
    """A code -> name view of ``enum`` (a view: no storage of its own in the file)."""
    rows = ", ".join(f"({int(m)}::{sql_type}, '{m.name}')" for m in enum)
    return [f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM (VALUES {rows}) t(code, name)"]


# the audit table with its codes by name: the one reading of it (view, `oms audit`)
AUDIT_TRAIL_SQL = (
    "SELECT a.seq, a.event_ns, make_timestamp(a.event_ns // 1000) AS time, a.sender, "
    "r.name AS role, c.name AS command, a.action, a.request_id, a.account, a.strategy, "
    "a.instrument, a.client_order_id, a.order_id, a.value, o.name AS outcome, a.code, "
    f"CASE WHEN a.outcome = {int(AuditOutcome.REFUSED)} THEN "
    f"'{WireError.UNAUTHORIZED.name}' WHEN a.outcome = {int(AuditOutcome.REJECT)} "
    "THEN j.name END AS reason "
    "FROM audit a LEFT JOIN roles r ON r.code = a.role "
    "LEFT JOIN command_types c ON c.code = a.cmd_type "
    "LEFT JOIN audit_outcomes o ON o.code = a.outcome "
    "LEFT JOIN reject_reasons j ON j.code = a.code")


def create_sql(spec: TableSpec) -> str:
    cols = ", ".join(_col_sql(spec.dtype, c, spec.text_columns) for c in spec.columns)
    return f'CREATE TABLE IF NOT EXISTS "{spec.name}" ({cols})'


def added_columns_sql(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> list[str]:
    """ALTER statements for the columns a record gained since the table was created (they
    come last in the table wherever they sit in the record: rows are inserted by name)."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
        [spec.name]).fetchall()}
    return [f'ALTER TABLE "{spec.name}" ADD COLUMN {_col_sql(spec.dtype, c, spec.text_columns)}'
            for c in spec.columns if c not in have]


def arrow_table(spec: TableSpec, arr: np.ndarray) -> pa.Table:
    """Columns of a structured array of records as an Arrow table (one copy per column)."""
    return pa.table({c: _text(arr[c]) if c in spec.text_columns else np.ascontiguousarray(arr[c])
                     for c in spec.columns})


def _text(col: np.ndarray) -> pa.Array:
    """NUL-padded UTF-8 byte arrays (n x width) as strings."""
    raw = np.ascontiguousarray(col).view(f"S{col.shape[1]}").ravel()  # drops the NULs
    return pa.array(raw, type=pa.binary()).cast(pa.string())


def connect(db_path: str, lock_timeout_s: float = 0.0, read_only: bool = False
            ) -> duckdb.DuckDBPyConnection:
    """Open the database (created on first use); retry while another process holds its lock
    for up to ``lock_timeout_s``, then raise :class:`StoreError` with a clear message."""
    deadline = time.monotonic() + lock_timeout_s
    while True:
        try:
            d = os.path.dirname(os.path.abspath(db_path))
            os.makedirs(d, exist_ok=True)
            return duckdb.connect(db_path, read_only=read_only)
        except (duckdb.Error, OSError) as e:  # locked, disk full, bad file, ...
            msg = str(e) or type(e).__name__
            if "lock" not in msg.lower() or time.monotonic() >= deadline:
                if "lock" in msg.lower():
                    raise StoreError(
                        f"database {db_path} is locked by another process (DuckDB allows one "
                        f"writer per file): {msg.splitlines()[0]}") from None
                raise StoreError(f"cannot open database {db_path}: {msg.splitlines()[0]}"
                                 ) from None
            time.sleep(0.2)


class Store:
    """The writer's DuckDB database."""

    def __init__(self, db_path: str, lock_timeout_s: float = 0.0) -> None:
        self.path = db_path
        self.rows_written = 0
        self.con = self._open(lock_timeout_s)

    def _open(self, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
        con = connect(self.path, lock_timeout_s)
        try:
            con.execute("CREATE TABLE IF NOT EXISTS writer_state (id INTEGER PRIMARY KEY, "
                        "last_seq UBIGINT NOT NULL, updated_ns BIGINT NOT NULL)")
            for spec in SPECS.values():
                con.execute(create_sql(spec))
                for sql in added_columns_sql(con, spec):
                    con.execute(sql)
            for sql in name_tables_sql():
                con.execute(sql)
            row = con.execute("SELECT last_seq FROM writer_state WHERE id = 1").fetchone()
            if row is None:
                con.execute("INSERT INTO writer_state VALUES (1, 0, 0)")
                self.last_seq = 0
            else:
                self.last_seq = int(row[0])
        except (duckdb.Error, OSError) as e:
            _close_quietly(con)
            raise StoreError(f"cannot prepare database {self.path}: {_first_line(e)}"
                             ) from None
        return con

    def reopen(self) -> None:
        """Close the connection and open the file again, re-reading ``last_seq`` from it.

        After an I/O error DuckDB may have invalidated the database instance ("must be
        restarted"), and a failed COMMIT may or may not have reached the WAL: the committed
        sequence the database itself holds is the only one to trust."""
        _close_quietly(self.con)
        self.con = self._open(0.0)

    def commit_batch(self, arrays: dict[int, np.ndarray], last_seq: int) -> int:
        """Insert the arrays (msg type -> structured records) and set last_seq, atomically.
        Return the rows inserted. On failure nothing is kept and StoreError is raised."""
        con = self.con
        rows = 0
        try:
            con.execute("BEGIN TRANSACTION")
            for mt, arr in arrays.items():
                if len(arr) == 0:
                    continue
                spec = SPECS[mt]
                tbl = arrow_table(spec, arr)
                con.register("_batch", tbl)
                # by name: a table made before a record gained a field has it last
                con.execute(f'INSERT INTO "{spec.name}" BY NAME SELECT * FROM _batch')
                con.unregister("_batch")
                rows += len(arr)
            con.execute("UPDATE writer_state SET last_seq = ?, updated_ns = ? WHERE id = 1",
                        [last_seq, time.time_ns()])
            con.execute("COMMIT")
        except (duckdb.Error, OSError) as e:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise StoreError(f"writing to {self.path} failed: {_first_line(e)}") from None
        self.last_seq = last_seq
        self.rows_written += rows
        return rows

    def checkpoint(self) -> None:
        try:
            self.con.execute("CHECKPOINT")
        except (duckdb.Error, OSError) as e:
            raise StoreError(f"checkpoint of {self.path} failed: {_first_line(e)}") from None

    def close(self) -> None:
        _close_quietly(self.con)


def _first_line(e: BaseException) -> str:
    lines = str(e).splitlines()
    return lines[0] if lines else type(e).__name__


def _close_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.close()
    except (duckdb.Error, OSError) as e:
        log.debug("closing the database connection: %s", e)


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: str) -> dict[str, int]:
    """Write every table as hive-partitioned Parquet: ``out_dir/<table>/date=.../account=...``.
    Return rows per table."""
    os.makedirs(out_dir, exist_ok=True)
    counts: dict[str, int] = {}
    for spec in SPECS.values():
        n = con.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0]
        counts[spec.name] = int(n)
        if n == 0:
            continue
        target = os.path.join(out_dir, spec.name).replace("'", "''")
        con.execute(
            f"COPY (SELECT *, CAST(make_timestamp(CAST(\"{spec.time_column}\" // 1000 AS BIGINT))"
            f' AS DATE) AS date FROM "{spec.name}") TO \'{target}\' '
            "(FORMAT PARQUET, PARTITION_BY (date, account), OVERWRITE_OR_IGNORE)")
    return counts
