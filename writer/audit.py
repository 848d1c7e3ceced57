"""One client's audit trail out of the writers' DuckDB files (``oms audit``).

A client's trail is every row of the ``audit`` table on its account, every row sent by the
keys of its users (``[security.users.*]`` with the client in ``clients``: their refused
commands on other accounts too), and the admin actions over every account (a global halt,
a mass cancel of all accounts) that reached it. Rows hold key names, never key material.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from bindings.wire.spec import ANY_ID, AuditOutcome, MsgType
from oms_core.config import OmsConfig
from writer.store import AUDIT_TRAIL_SQL, StoreError, connect

FORMATS = {".csv": "CSV, HEADER", ".parquet": "PARQUET", ".json": "JSON"}


class AuditError(RuntimeError):
    """The trail cannot be read (no database yet, locked, written before the audit table)."""


def client_keys(cfg: OmsConfig, client: str) -> list[str]:
    """Names of the keys that act for ``client`` (its traders and viewers)."""
    return sorted(u.name for u in cfg.security.users.values() if client in u.clients)


def databases(cfg: OmsConfig) -> list[str]:
    """The DuckDB file of every shard (one unless the clients are sharded)."""
    from oms_core.supervisor import database_of, shards_of

    shards = shards_of(cfg)
    return [database_of(cfg, k, len(shards)) for k in shards]


def _names(kind: str, ids: dict[str, int]) -> pa.Table:
    return pa.table({"id": pa.array(list(ids.values()), pa.uint32()),
                     "name": pa.array(list(ids), pa.string())}).rename_columns(
                         ["id", f"{kind}_name"])


def client_trail(cfg: OmsConfig, client: str, since_ns: int | None = None,
                 until_ns: int | None = None) -> pa.Table:
    """The trail of ``client`` (a configured client name) ordered by time, as Arrow."""
    account = cfg.clients[client].id
    keys = client_keys(cfg, client)
    where = [f"(t.account = {account} OR t.sender IN (SELECT unnest(?::VARCHAR[])) OR "
             f"(t.account = {ANY_ID} AND t.outcome_code = {int(AuditOutcome.ACK)} AND "
             f"t.cmd_type IN ({int(MsgType.ADMIN)}, {int(MsgType.MASS_CANCEL)})))"]
    params: list[object] = [keys]
    if since_ns is not None:
        where.append("t.event_ns >= ?")
        params.append(since_ns)
    if until_ns is not None:
        where.append("t.event_ns < ?")
        params.append(until_ns)
    trail = AUDIT_TRAIL_SQL.replace("SELECT ", "SELECT a.outcome AS outcome_code, "
                                    "a.cmd_type, ", 1)
    sql = (f"SELECT t.* EXCLUDE (outcome_code, cmd_type), c.client_name, s.strategy_name, "
           f"i.instrument_name FROM ({trail}) t "
           "LEFT JOIN clients_ c ON c.id = t.account "
           "LEFT JOIN strategies_ s ON s.id = t.strategy "
           "LEFT JOIN instruments_ i ON i.id = t.instrument "
           f"WHERE {' AND '.join(where)} ORDER BY t.event_ns, t.seq")
    tables = []
    for db in databases(cfg):
        if not os.path.exists(db):
            continue
        try:
            con = connect(db, read_only=True)
        except StoreError as e:
            raise AuditError(str(e)) from None
        try:
            has = con.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_name = 'audit_trail'").fetchall()
            if not has[0][0]:
                raise AuditError(f"{db} has no audit trail (written by a writer older than "
                                 "the audit table)")
            con.register("clients_", _names("client", {n: c.id for n, c in
                                                       cfg.clients.items()}))
            con.register("strategies_", _names("strategy", {n: s.id for n, s in
                                                            cfg.strategies.items()}))
            con.register("instruments_", _names("instrument", {n: i.id for n, i in
                                                               cfg.instruments.items()}))
            tables.append(con.sql(sql, params=params).to_arrow_table())
        finally:
            con.close()
    if not tables:
        raise AuditError("no database yet: " + ", ".join(databases(cfg)))
    out = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if len(tables) > 1:
        out = out.sort_by([("event_ns", "ascending"), ("seq", "ascending")])
    return out


def write_trail(table: pa.Table, out: str) -> None:
    """Write ``table`` to ``out``: CSV, or Parquet / JSON (one object a line) by extension."""
    fmt = FORMATS.get(Path(out).suffix.lower(), FORMATS[".csv"])
    con = duckdb.connect()
    try:
        con.register("trail", table)
        target = out.replace("'", "''")
        con.execute(f"COPY trail TO '{target}' (FORMAT {fmt})")
    finally:
        con.close()


__all__ = ["FORMATS", "AuditError", "client_keys", "client_trail", "databases", "write_trail"]
