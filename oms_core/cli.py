"""The ``oms`` command.

    oms run --config FILE        start the whole OMS (simulator in paper mode, engine shards,
                                 gateways, writers); restart crashed children; SIGTERM stops all;
                                 one instance per run directory and journal (oms.lock, its PID)
    oms status --config FILE     processes, connections, positions, P&L, latency percentiles
    oms halt / oms resume --config FILE [--account NAME | --strategy NAME] [--reduce-only]
                                 [--cancel]  (halt: also cancel the resting orders in scope)
    oms cancel / oms flatten --config FILE [--account NAME] [--strategy NAME]
                                 [--instrument NAME]  resting orders; positions (cancel first)
    oms keys DIR NAME...         CURVE key pairs (DIR/NAME.key, DIR/NAME.key_secret, 0600)
    oms audit --config FILE --client NAME [--since ISO] [--until ISO] [--out PATH]
                                 one client's audit trail from DuckDB (CSV; .parquet / .json
                                 by the extension of PATH; stdout without --out)
    oms report --db FILE --config FILE [--client --strategy --exchange --instrument NAME|ID]
                                 [--from DATE] [--to DATE] [--out DIR]  tables, one offline
                                 HTML file and CSV / Parquet / JSON of a database's analytics
    oms replay ...               historical bars and signals (the replay package)
    oms demo [--seconds N]       everything above on a synthetic market, no configuration
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bindings.wire.spec import ALERTS_KEPT
from oms_core.config import (
    ConfigError,
    OmsConfig,
    check_credentials,
    check_extras,
    load_config,
)
from oms_core.latency import Latencies
from oms_core.security import operator_keys


def _load(path: str) -> OmsConfig:
    """Load the configuration or exit 2 with the file, the key and the problem."""
    try:
        return load_config(path)
    except ConfigError as e:
        print(f"oms: configuration refused: {e}", file=sys.stderr)
        raise SystemExit(2) from None


# ------------------------------------------------------------------------------------ run
def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(str(Path(args.config).resolve()))
    try:
        check_extras(cfg)
        if cfg.mode == "live":
            check_credentials(cfg)
    except ConfigError as e:
        print(f"oms: configuration refused: {e}", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir or Path(cfg.engine.journal_dir).parent / "run").resolve()
    from oms_core.instance import InstanceLocked, acquire_all

    try:  # before anything is written: a second instance would rewrite the first one's files
        locks = acquire_all([cfg.engine.journal_dir, run_dir])
    except InstanceLocked as e:
        print(f"oms: {e}", file=sys.stderr)
        return 1
    try:
        return _run_locked(args, cfg, run_dir)
    finally:
        for lock in locks:
            lock.release()


def _run_locked(args: argparse.Namespace, cfg: OmsConfig, run_dir: Path) -> int:
    from oms_core.supervisor import Supervisor, plan

    try:
        specs, info = plan(cfg, str(Path(args.config).resolve()), run_dir,
                           insecure=args.insecure)
    except ValueError as e:
        print(f"oms: {args.config}: {e}", file=sys.stderr)
        return 2
    sup = Supervisor(specs, run_dir, status_endpoint=cfg.engine.health, info=info,
                     backoff_s=args.backoff)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        sup.start(timeout=args.start_timeout)
    except RuntimeError as e:
        print(f"oms: {e}", file=sys.stderr)
        return 1
    print("READY " + json.dumps({"run_dir": str(run_dir), "shards": info["shards"],
                                 "status": cfg.engine.health}), flush=True)
    sup.serve(lambda: stop)
    codes = sup.shutdown()
    bad = {k: v for k, v in codes.items() if v not in (0, None)}
    print("STOPPED " + json.dumps(codes), flush=True)
    return 1 if bad else 0


# --------------------------------------------------------------------------------- status
def _dec(raw: int, precision: int) -> str:
    return format(Decimal(raw).scaleb(-precision), "f")


def gather_status(cfg: OmsConfig, pings: int = 100, timeout: float = 2.0,
                  alerts: int = 5) -> dict[str, Any]:
    """Ask the supervisor (processes) and every shard's engine (positions, balances, latency,
    gateway states, the ``alerts`` newest risk alerts)."""
    from bindings.client import OmsClient, OmsError, order_reject_text
    from bindings.wire.records import CODECS
    from bindings.wire.spec import Scope
    from oms_core.engine.config import shard_endpoint
    from oms_core.enums import OrderStatus, OrderType, Side
    from oms_core.supervisor import ask_status, shards_of

    KillState, OrderUpdate, PositionUpdate, BalanceUpdate = (  # noqa: N806
        CODECS[n].tuple_cls for n in ("KILL_STATE", "ORDER_UPDATE", "POSITION_UPDATE",
                                      "BALANCE_UPDATE"))
    out: dict[str, Any] = {"supervisor": ask_status(cfg.engine.health, timeout), "shards": {}}
    by_id = {i.id: i for i in cfg.instruments.values()}
    assets = {a.id: a for a in cfg.assets.values()}
    for k in shards_of(cfg):
        ep = shard_endpoint(cfg.engine.commands, k)
        shard: dict[str, Any] = {"commands": ep, "connected": False, "clients": {}}
        out["shards"][str(k)] = shard
        with OmsClient(ep, timeout=timeout, curve=operator_keys(cfg)) as c:
            try:
                rtt = Latencies()
                for _ in range(pings):
                    t0 = time.perf_counter_ns()
                    c.heartbeat()
                    rtt.record_value(time.perf_counter_ns() - t0)
                shard["connected"] = True
                p50, p99, p999 = rtt.p50_p99_p999()
                shard["latency_ns"] = {"p50": p50, "p99": p99, "p999": p999,
                                       "n": rtt.get_total_count()}
                shard["gateways"] = _gateway_states(cfg, k, getattr(c.gateways(), "rows", []))
                shard["alerts"] = [_alert_entry(cfg, a) for a in
                                   getattr(c.alerts(limit=alerts), "rows", [])]
                for client in cfg.clients.values():
                    if client.shard != k:
                        continue
                    snap = getattr(c.account_snapshot(account=client.id), "rows", [])
                    # every account's snapshot carries the global and strategy switches too
                    shard["kill"] = [_kill_text(cfg, r) for r in snap
                                     if isinstance(r, KillState) and r.scope != Scope.ACCOUNT]
                    pos = [r for r in snap if isinstance(r, PositionUpdate)]
                    bal = [r for r in snap if isinstance(r, BalanceUpdate)]
                    kill = [_kill_text(cfg, r) for r in snap if isinstance(r, KillState)
                            and r.scope == Scope.ACCOUNT and r.kill_mode]
                    orders = [{"order_id": o.order_id, "instrument": by_id[o.instrument].symbol,
                               "side": Side(o.side).name.lower(),
                               "type": OrderType(o.order_type).name,
                               "qty": _dec(o.leaves, by_id[o.instrument].qty_precision),
                               "price": _dec(o.price or o.trigger_price,
                                             by_id[o.instrument].price_precision),
                               "status": OrderStatus(o.status).name}
                              for o in snap if isinstance(o, OrderUpdate)
                              and o.instrument in by_id]
                    # the orders the engine still holds that were refused, newest first
                    held = getattr(c.orders(open_only=False, account=client.id), "rows", [])
                    rejected = sorted((o for o in held if isinstance(o, OrderUpdate)
                                       and o.status == OrderStatus.REJECTED
                                       and o.instrument in by_id),
                                      key=lambda o: -o.order_id)[:_REJECTS_SHOWN]
                    refused = [{"order_id": o.order_id,
                                "instrument": by_id[o.instrument].symbol,
                                "side": Side(o.side).name.lower(),
                                "qty": _dec(o.quantity, by_id[o.instrument].qty_precision),
                                "venue_code": o.venue_code, "why": order_reject_text(o)}
                               for o in rejected]
                    rows = []
                    for p in pos:
                        inst = by_id.get(p.instrument)
                        if inst is None or (p.quantity == 0 and p.realized_pnl == 0):
                            continue
                        quote = cfg.assets[inst.quote].precision
                        rows.append({"instrument": inst.symbol,
                                     "qty": _dec(p.quantity, inst.qty_precision),
                                     "realized": _dec(p.realized_pnl, quote),
                                     "fees": _dec(p.fees, quote),
                                     "unrealized": _dec(p.unrealized_pnl, quote),
                                     "unprotected": bool(p.unprotected)})
                    balances = {assets[b.asset].name: {
                        "total": _dec(b.total, assets[b.asset].precision),
                        "free": _dec(b.free, assets[b.asset].precision)}
                        for b in bal if b.asset in assets}
                    shard["clients"][client.name] = {"account": client.id, "positions": rows,
                                                     "balances": balances, "kill": kill,
                                                     "open_orders": orders,
                                                     "rejected": refused}
            except OmsError as e:
                shard["error"] = f"{type(e).__name__}: {e}"
    return out


_REJECTS_SHOWN = 5  # refused orders per client in `oms status`


def _gateway_states(cfg: OmsConfig, shard: int, rows: list[Any]) -> list[dict[str, Any]]:
    """Each gateway of ``shard`` (one per exchange with venue accounts there): what it last
    said (GatewayRow), how long ago, and the venue accounts it serves."""
    heard = {r.gateway_id: r for r in rows}
    out = []
    for name, ex in cfg.exchanges.items():
        served = [c.name for c in cfg.venue_accounts(name, shard)]
        if not served:
            continue
        r = heard.get(ex.id)
        out.append({
            "exchange": name, "gateway_id": ex.id, "accounts": served,
            "state": getattr(r.state, "name", str(r.state)) if r else None,
            "detail": r.detail if r else 0, "age_s": round(r.age_s, 1) if r else None,
            "silent": r.silent if r else True,
            "text": str(r) if r else "never heard (not started, or not connected)"})
    return out


def _alert_entry(cfg: OmsConfig, a: Any) -> dict[str, Any]:
    import datetime as dt

    when = dt.datetime.fromtimestamp(a.event_ns / 1e9, dt.UTC)
    names = {c.id: c.name for c in cfg.clients.values()}
    who = names.get(a.account, str(a.account))
    return {"time": when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "event_ns": a.event_ns,
            "account": who, "kind": getattr(a.alert, "name", str(a.alert)),
            "order_id": a.order_id, "a": a.a, "b": a.b, "text": a.text}


def _kill_text(cfg: OmsConfig, r: Any) -> str:
    """``global: HALT``, ``strategy trend: REDUCE_ONLY``, ``account: HALT``."""
    from bindings.wire.spec import Scope
    from oms_core.enums import KillMode

    mode = KillMode(r.kill_mode).name
    if r.scope == Scope.STRATEGY:
        return f"strategy {cfg.ids.name('strategies', r.strategy)}: {mode}"
    return f"{Scope(r.scope).name.lower()}: {mode}"


def halt_lines(sup: dict[str, Any]) -> list[str]:
    """One line per engine whose reconciliation keeps trading halted, with the reason."""
    out = []
    for p in sup.get("processes", []):
        rep = p.get("report") or {}
        if rep.get("halted") and not rep.get("ok", True):
            why = "; ".join(f"exchange {ex}: {w}" for ex, w in sorted(rep.get("why", {}).items()))
            out.append(f"{p['name']}: trading HALTED: reconciliation failed ({why or 'no answer'})"
                       "; it resumes when the gateway answers, or `oms resume`")
    return out


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    st = gather_status(cfg, pings=args.pings, timeout=args.timeout, alerts=args.alerts)
    if args.json:
        print(json.dumps(st, indent=1))
    else:
        from rich.console import Console
        from rich.table import Table

        con = Console()
        sup = st["supervisor"]
        if sup is None:
            con.print(f"supervisor: no answer on {cfg.engine.health}")
        else:
            t = Table(title=f"processes ({sup.get('mode')}, supervisor pid {sup.get('pid')})")
            for col in ("name", "pid", "alive", "up s", "restarts", "last exit"):
                t.add_column(col)
            for p in sup["processes"]:
                t.add_row(p["name"], str(p["pid"]), str(p["alive"]), str(p["up_s"]),
                          str(p["restarts"]), str(p["last_exit"]))
            con.print(t)
            for line in halt_lines(sup):
                con.print(line)
        for k, sh in st["shards"].items():
            lat = sh.get("latency_ns", {})
            con.print(f"shard {k}: {sh['commands']} connected={sh['connected']} "
                      f"round trip p50 {lat.get('p50', 0) / 1000:.0f} us "
                      f"p99 {lat.get('p99', 0) / 1000:.0f} us "
                      f"p99.9 {lat.get('p999', 0) / 1000:.0f} us {sh.get('error', '')}")
            for line in sh.get("kill", []):
                if not line.endswith(": OFF"):
                    con.print(f"shard {k} kill switch {line}")
            t = Table(title="gateways")
            for col in ("exchange", "state", "venue accounts"):
                t.add_column(col)
            for g in sh.get("gateways", []):
                t.add_row(g["exchange"], g["text"], ", ".join(g["accounts"]))
            con.print(t)
            t = Table(title="recent alerts, newest first")
            for col in ("time (UTC)", "client", "alert", "what"):
                t.add_column(col)
            for a in sh.get("alerts", []):
                t.add_row(a["time"], a["account"], a["kind"], a["text"])
            con.print(t)
            t = Table(title="positions")
            for col in ("client", "instrument", "position", "realized", "fees", "unrealized",
                        "protected"):
                t.add_column(col, justify="right")
            for name, cl in sh["clients"].items():
                for r in cl["positions"]:
                    t.add_row(name, r["instrument"], r["qty"], r["realized"], r["fees"],
                              r["unrealized"],
                              "NO (protective order refused)" if r.get("unprotected") else "")
            con.print(t)
            t = Table(title="balances, kill switches, open orders")
            for col in ("client", "balances (free / total)", "kill", "open orders"):
                t.add_column(col)
            for name, cl in sh["clients"].items():
                t.add_row(name, ", ".join(f"{a} {b['free']} / {b['total']}"
                                          for a, b in cl["balances"].items()),
                          ", ".join(cl["kill"]) or "-",
                          "\n".join(f"{o['instrument']} {o['side']} {o['qty']} {o['type']} "
                                    f"{o['price']} {o['status']}"
                                    for o in cl["open_orders"][:20])
                          + (f"\n... {len(cl['open_orders']) - 20} more"
                             if len(cl["open_orders"]) > 20 else "") or "-")
            con.print(t)
            for name, cl in sh["clients"].items():
                for o in cl.get("rejected", []):
                    con.print(f"{name}: order {o['order_id']} {o['instrument']} {o['side']} "
                              f"{o['qty']} REJECTED: {o['why']}")
    ok = all(sh["connected"] for sh in st["shards"].values())
    return 0 if ok else 1


# ---------------------------------------------------------------------------- halt/resume
def cmd_kill(args: argparse.Namespace, halt: bool) -> int:
    from bindings.client import Ack, OmsClient, OmsError
    from bindings.wire.spec import Scope
    from oms_core.engine.config import shard_endpoint
    from oms_core.enums import KillMode
    from oms_core.supervisor import shards_of

    cfg = _load(args.config)
    scope, account, strategy, shards = Scope.GLOBAL, 0, 0, shards_of(cfg)
    if args.account:
        if args.account not in cfg.clients:
            print(f"oms: no client {args.account!r} in {cfg.file}", file=sys.stderr)
            return 2
        c = cfg.clients[args.account]
        scope, account, shards = Scope.ACCOUNT, c.id, [c.shard]
    elif args.strategy:
        if args.strategy not in cfg.strategies:
            print(f"oms: no strategy {args.strategy!r} in {cfg.file}", file=sys.stderr)
            return 2
        scope, strategy = Scope.STRATEGY, cfg.strategies[args.strategy].id
    mode = KillMode.REDUCE_ONLY if getattr(args, "reduce_only", False) else KillMode.HALT
    status = 0
    for k in shards:
        ep = shard_endpoint(cfg.engine.commands, k)
        try:
            with OmsClient(ep, timeout=args.timeout, curve=operator_keys(cfg)) as c:
                r = (c.kill(scope, mode, account=account, strategy=strategy) if halt
                     else c.resume(scope, account=account, strategy=strategy))
        except OmsError as e:
            r = e
        ok = isinstance(r, Ack)
        status |= 0 if ok else 1
        what = f"{'halt' if halt else 'resume'} {scope.name.lower()}"
        print(f"shard {k}: {what}: {'ok' if ok else r}")
    if halt and getattr(args, "cancel", False):
        from oms_core import control

        sel = control.select(cfg, args.account, args.strategy)
        status |= control.cancel(cfg, sel, print, args.timeout)
    return status


# ------------------------------------------------------------------------- cancel/flatten
def cmd_control(args: argparse.Namespace) -> int:
    from oms_core import control

    cfg = _load(args.config)
    try:
        sel = control.select(cfg, args.account, args.strategy, args.instrument)
    except ValueError as e:
        print(f"oms: {e}", file=sys.stderr)
        return 2
    if args.command == "cancel":
        return control.cancel(cfg, sel, print, args.timeout)
    return control.flatten(cfg, sel, print, args.timeout, args.settle)


# ----------------------------------------------------------------------------------- keys
def cmd_keys(args: argparse.Namespace) -> int:
    """Every key the configuration needs (``--config``), or the named ones (``--dir``)."""
    from bindings.security import write_keypair
    from oms_core import security

    if args.config:
        cfg = _load(args.config)
        try:
            made = security.write_keys(cfg, force=args.force)
        except security.KeysExist as e:
            print(f"oms: {e}", file=sys.stderr)
            return 1
        for name in made:
            pub, sec = security.key_files(cfg, name)
            print(f"{name}: public {pub}  secret {sec} (mode 0600)")
        print(f"security is {'on' if security.security_on(cfg) else 'off'} for {args.config} "
              f"([security] mode = {cfg.security.mode!r})")
        return 0
    if not args.dir or not args.names:
        print("oms keys: give --config FILE, or a directory and key names", file=sys.stderr)
        return 2
    for name in args.names:
        pub, sec = Path(args.dir) / f"{name}.key", Path(args.dir) / f"{name}.key_secret"
        if (pub.exists() or sec.exists()) and not args.force:
            print(f"oms: {sec} exists: use --force to replace it", file=sys.stderr)
            return 1
        pub, sec = write_keypair(args.dir, name)
        print(f"{name}: public {pub}  secret {sec} (mode 0600)")
    return 0


# ---------------------------------------------------------------------------------- audit
def _utc_ns(text: str | None, what: str) -> int | None:
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        print(f"oms audit: {what} {text!r} is not an ISO time (2026-12-01T15:00:00)",
              file=sys.stderr)
        raise SystemExit(2) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def cmd_audit(args: argparse.Namespace) -> int:
    """Export one client's audit trail (writer/audit.py says which rows are its)."""
    from writer.audit import AuditError, client_trail, write_trail

    cfg = _load(args.config)
    if args.client not in cfg.clients:
        print(f"oms audit: no client {args.client!r} in {args.config}; known clients: "
              f"{', '.join(sorted(cfg.clients))}", file=sys.stderr)
        return 2
    since, until = _utc_ns(args.since, "--since"), _utc_ns(args.until, "--until")
    try:
        trail = client_trail(cfg, args.client, since, until)
    except AuditError as e:
        print(f"oms audit: {e}", file=sys.stderr)
        return 1
    out = args.out or "/dev/stdout"
    sys.stdout.flush()
    write_trail(trail, out)
    if args.out:
        print(f"{trail.num_rows} audit rows of {args.client} -> {args.out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    """Print and write the analytics report of one database (analytics/report.py)."""
    from analytics.metrics import PERIODS_PER_YEAR, RISK_FREE_RATE
    from analytics.report import ReportError, Selection, parse_time, run_report

    if not args.config:
        # the database stores P&L as raw integers of each quote asset's precision and holds
        # no precisions or names yet: without the configuration no amount can be shown honestly
        print("oms report: --config is needed: the database holds P&L as raw integers and no "
              "precisions or names; pass the configuration the OMS ran with", file=sys.stderr)
        return 2
    if args.periods_per_year is not None and args.periods_per_year <= 0:
        print("oms report: --periods-per-year must be positive", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
        sel = Selection(args.client, args.strategy, args.exchange, args.instrument,
                        parse_time(args.start, "--from") if args.start else None,
                        parse_time(args.end, "--to") if args.end else None)
        run_report(args.db, cfg, sel, args.out,
                   periods_per_year=(PERIODS_PER_YEAR if args.periods_per_year is None
                                     else args.periods_per_year),
                   risk_free_rate=RISK_FREE_RATE if args.risk_free is None else args.risk_free)
    except ConfigError as e:
        print(f"oms report: configuration refused: {e}", file=sys.stderr)
        return 2
    except (ReportError, OSError) as e:
        print(f"oms report: {e}", file=sys.stderr)
        return 2
    return 0


def _report_after_run(db: str | None, cfg: OmsConfig) -> int:
    """The report that ends ``oms demo`` and ``oms replay``, beside their database."""
    from analytics.report import ReportError, run_report

    if db is None:
        print("oms: no report: the replay kept no database (pass --out FILE)", file=sys.stderr)
        return 0
    try:
        run_report(db, cfg)
    except ReportError as e:
        print(f"oms report: {e}", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["replay"]:
        from replay.cli import main as replay_main

        return int(replay_main(argv[1:], after=_report_after_run) or 0)
    ap = argparse.ArgumentParser(prog="oms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="start the OMS of a configuration and supervise it")
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", help="logs, generated child configs, state.json "
                                     "(default: beside the journal directory)")
    p.add_argument("--backoff", type=float, default=0.5, help="first restart delay, s")
    p.add_argument("--start-timeout", type=float, default=30.0)
    p.add_argument("--insecure", action="store_true",
                   help="with [security] mode = \"off\", allow endpoints other hosts can reach")
    p = sub.add_parser("status", help="processes, positions, P&L, latency of a running OMS")
    p.add_argument("--config", required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--pings", type=int, default=100)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--alerts", type=int, default=5, metavar="N",
                   help=f"show the N newest risk alerts (the engine keeps {ALERTS_KEPT})")
    for name in ("halt", "resume"):
        p = sub.add_parser(name, help=f"kill switch: {name} (global unless --account or "
                                      "--strategy)")
        p.add_argument("--config", required=True)
        g = p.add_mutually_exclusive_group()
        g.add_argument("--account", help="client name")
        g.add_argument("--strategy", help="strategy name")
        if name == "halt":
            p.add_argument("--reduce-only", action="store_true",
                           help="allow orders that reduce positions")
            p.add_argument("--cancel", action="store_true",
                           help="also cancel the resting orders in scope")
        p.add_argument("--timeout", type=float, default=5.0)
    for name, what in (("cancel", "cancel resting orders"),
                       ("flatten", "cancel resting orders, then close the positions")):
        p = sub.add_parser(name, help=f"{what} (every client unless narrowed)")
        p.add_argument("--config", required=True)
        p.add_argument("--account", help="client name")
        p.add_argument("--strategy", help="strategy name")
        p.add_argument("--instrument", help="instrument name")
        p.add_argument("--timeout", type=float, default=5.0)
        if name == "flatten":
            p.add_argument("--settle", type=float, default=15.0,
                           help="how long to wait for the venue's cancels and fills, s")
    p = sub.add_parser("keys", help="generate the CURVE keys of a configuration "
                                    "(--config), or named key pairs into a directory")
    p.add_argument("--config", help="every key this configuration needs, in its "
                                    "[security] keys_dir")
    p.add_argument("--force", action="store_true", help="replace keys that exist")
    p.add_argument("dir", nargs="?", help="without --config: the directory")
    p.add_argument("names", nargs="*", help="without --config: the key names")
    p = sub.add_parser("audit", help="export one client's audit trail (every command on "
                                     "its accounts or sent by its keys) from DuckDB")
    p.add_argument("--config", required=True)
    p.add_argument("--client", required=True, help="client name")
    p.add_argument("--since", help="ISO time (UTC unless it says otherwise), inclusive")
    p.add_argument("--until", help="ISO time, exclusive")
    p.add_argument("--out", help="file: CSV, or .parquet / .json (default: CSV on stdout)")
    p = sub.add_parser("report", help="analytics of a database: terminal tables, one offline "
                                      "HTML file, CSV / Parquet / JSON (docs/analytics.md)")
    p.add_argument("--db", required=True, help="the writer's DuckDB file")
    p.add_argument("--config", help="the configuration the OMS ran with (needed: precisions "
                                    "and names)")
    p.add_argument("--client", help="client name or id")
    p.add_argument("--strategy", help="strategy name or id")
    p.add_argument("--exchange", help="exchange name or id")
    p.add_argument("--instrument", help="instrument name or id")
    p.add_argument("--from", dest="start", help="ISO date or time (UTC), inclusive")
    p.add_argument("--to", dest="end", help="ISO date or time (UTC), exclusive")
    p.add_argument("--out", help="directory of the files (default: report-<db stem>/ beside "
                                 "the database)")
    # defaults: analytics.metrics (imported only when a report runs)
    p.add_argument("--periods-per-year", type=float,
                   help="periods per year of the daily returns (default 365: crypto)")
    p.add_argument("--risk-free", type=float,
                   help="annual risk-free rate for Sharpe and Sortino (default 0)")
    sub.add_parser("replay", help="replay historical data (see `oms replay --help`)")
    p = sub.add_parser("demo", help="run the self-contained demo (ends by itself)")
    p.add_argument("--seconds", type=float, default=40.0, help="trading time (default 40)")
    p.add_argument("--dir", help="where the database, journal and logs go "
                                 "(default: a new temporary directory)")
    p.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "status":
        return cmd_status(args)
    if args.command in ("halt", "resume"):
        return cmd_kill(args, args.command == "halt")
    if args.command in ("cancel", "flatten"):
        return cmd_control(args)
    if args.command == "keys":
        return cmd_keys(args)
    if args.command == "audit":
        return cmd_audit(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "demo":
        from oms_core.demo import run_demo

        d = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="oms-demo-"))
        return run_demo(d, args.seconds, args.seed, after=_report_after_run)
    return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
