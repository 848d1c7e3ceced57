"""Run the engine: ``python -m oms_core.engine --config FILE`` (or flags), or make keys.

    python -m oms_core.engine --config engine.toml
    python -m oms_core.engine --client ipc:///tmp/oms --no-security --config engine.toml
    python -m oms_core.engine keygen DIR NAME      # CURVE key pair: DIR/NAME.key(_secret)

With ``--journal DIR`` it first recovers (newest snapshot + replay of the journal after it,
see oms_core/engine/startup.py) and prints ``RECOVERED {json}``.
When ready the engine prints one line ``READY {json of the bound endpoints}`` on stdout
(tests and supervisors wait for it). SIGTERM / SIGINT stop it cleanly (exit status 0), at any
moment from the line ``STARTING {"pid": N}`` on: during configuration load and recovery the
start is cut short (the journal closed as it is), while serving what is in flight is
answered first, and any number of further signals change nothing.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

# noted before anything slow is imported; the Engine's own handler takes over once it exists
_STOP_SIGNALS: list[int] = []


def _note_stop(signum: int, frame: Any) -> None:
    _STOP_SIGNALS.append(signum)


signal.signal(signal.SIGTERM, _note_stop)
signal.signal(signal.SIGINT, _note_stop)
# a supervisor starts its children with these blocked (held, not lost, until now)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

from .config import build_core, load_engine_config  # noqa: E402
from .server import EXIT_JOURNAL_FAILED, BindError, Engine, JournalWriteError  # noqa: E402

_held: list[Any] = []  # the journal directory's instance lock


def _ignore_stop_signals() -> None:
    """After the clean stop: CPython puts the default action back for handlers set from Python
    while the interpreter shuts down, so a late SIGTERM would end an exit 0 as -15; an
    ignored signal stays ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _open_journal(path: str, durability: str, group_us: int) -> Any:
    from oms_core.journal import Journal

    return Journal(path, durability=durability, group_us=group_us)


def _rebind(cfg: Any, host: str) -> None:
    """Replace the host of every tcp:// endpoint the engine binds (others connect by name)."""

    def re(ep: Any) -> Any:
        if isinstance(ep, list):
            return [re(e) for e in ep]
        if not ep or not ep.startswith("tcp://"):
            return ep
        return f"tcp://{host}:{ep.rpartition(':')[2]}"

    for name in ("client", "public", "writer", "gateway_events", "gateway_md"):
        setattr(cfg, name, re(getattr(cfg, name)))
    for g in cfg.gateways:
        g.orders = re(g.orders) or g.orders


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print("STARTING " + json.dumps({"pid": os.getpid()}), flush=True)
    if argv[:1] == ["keygen"]:
        from bindings.security import write_keypair

        if len(argv) != 3:
            print("usage: python -m oms_core.engine keygen DIR NAME", file=sys.stderr)
            return 2
        pub, sec = write_keypair(argv[1], argv[2])
        print(f"public key: {pub}\nsecret key (mode 0600): {sec}")
        return 0
    ap = argparse.ArgumentParser(prog="python -m oms_core.engine", description=__doc__)
    ap.add_argument("--config", required=True,
                    help="engine TOML file, or the full OMS TOML (oms_core/config.py)")
    ap.add_argument("--shard", type=int, default=0,
                    help="with the full OMS TOML: the shard whose clients this engine owns")
    ap.add_argument("--client", help="client ROUTER endpoint (overrides the config)")
    ap.add_argument("--public", help="PUB endpoint")
    ap.add_argument("--writer", help="writer PUSH endpoint")
    ap.add_argument("--ids", metavar="FILE",
                    help="JSON kind -> name -> id: the ids of the configuration's names for an "
                         "engine run alone without a journal (tests, benchmarks); with a "
                         "journal its identity table decides")
    ap.add_argument("--journal", help="journal directory (oms_core.journal); the engine "
                                      "recovers from it on start (snapshot + replay)")
    ap.add_argument("--durability", choices=("sync", "group", "os"),
                    help="journal durability (default: the config's journal_durability, "
                         "'group'): 'sync' fdatasyncs every commit, 'group' at most every "
                         "--group-us, 'os' leaves it to the kernel; docs/journal.md says what "
                         "each can lose")
    ap.add_argument("--group-us", type=int, metavar="MICROSECONDS",
                    help="'group' durability window (default: journal_group_us, 1000)")
    ap.add_argument("--snapshot-every", type=int, default=1_000_000, metavar="RECORDS",
                    help="write a snapshot every RECORDS journal records (0: off)")
    ap.add_argument("--snapshot-seconds", type=float, default=60.0,
                    help="write a snapshot every SECONDS with traffic (0: off)")
    ap.add_argument("--no-reconcile", action="store_true",
                    help="after a restart from a non-empty journal, do NOT gate trading on "
                         "reconciliation with the gateways (default: gate, reconcile, resume)")
    ap.add_argument("--reconcile-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="how long to wait for every gateway's reconciliation answer; a "
                         "gateway silent for longer keeps trading halted until an admin "
                         "RESUME GLOBAL (journaled)")
    ap.add_argument("--unknown-reconcile-s", type=float, default=10.0, metavar="SECONDS",
                    help="reconcile with the gateways when orders stayed UNKNOWN (submit in "
                         "doubt, not resolved by the gateway's own query) this long")
    ap.add_argument("--bind-host", help="bind every tcp:// endpoint on this interface instead "
                                        "of the configured host (e.g. '*' in a container)")
    sec = ap.add_mutually_exclusive_group()
    sec.add_argument("--security", dest="security", action="store_true", default=None)
    sec.add_argument("--no-security", dest="security", action="store_false")
    ap.add_argument("--insecure", action="store_true",
                    help="with security off, bind tcp endpoints reachable from other hosts "
                         "anyway (every peer is then admin over every account)")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from oms_core.config import ConfigError

    try:
        ids = json.loads(Path(args.ids).read_text()) if args.ids else None
        cfg = load_engine_config(Path(args.config), shard=args.shard, ids=ids)
    except (ConfigError, ValueError) as e:
        print(f"configuration refused: {e}", file=sys.stderr)
        return 2
    for name in ("client", "public", "writer"):
        if getattr(args, name):
            setattr(cfg, name, getattr(args, name))
    if args.bind_host:
        _rebind(cfg, args.bind_host)
    if args.security is not None:
        cfg.security = args.security
    if not cfg.security_on:
        from oms_core.security import local_only

        bound = [cfg.client, cfg.public, cfg.writer, cfg.gateway_events, cfg.gateway_md,
                 *(g.orders for g in cfg.gateways)]
        flat = [e for ep in bound if ep for e in ([ep] if isinstance(ep, str) else ep)]
        reachable = [ep for ep in flat if not local_only(ep)]
        if reachable and not args.insecure:
            print(f"configuration refused: security is off but {', '.join(reachable)} can be "
                  "reached from other hosts: turn security on, bind to 127.0.0.1 or ipc, or "
                  "pass --insecure", file=sys.stderr)
            return 2
        if reachable:
            logging.getLogger("oms.engine").warning(
                "INSECURE: security is off and %s can be reached from other hosts: anyone who "
                "connects is admin over every account", ", ".join(reachable))
    if args.journal:
        cfg.journal_dir = args.journal
    try:
        return _serve(args, cfg)
    except JournalWriteError as e:  # at start: opening, the gate or reconciliation
        logging.getLogger("oms.engine").error(
            "ALERT engine: %s. The journal directory %s is not writable; the engine exits with "
            "status %d (nothing was acknowledged since the failure)", e, cfg.journal_dir,
            EXIT_JOURNAL_FAILED)
        return EXIT_JOURNAL_FAILED


def _serve(args: argparse.Namespace, cfg: Any) -> int:
    from oms_core.allocator import keep_freed_memory

    keep_freed_memory()
    if cfg.journal_dir:
        from oms_core.instance import InstanceLock, InstanceLocked

        try:  # held until exit: one engine per journal
            _held.append(InstanceLock(cfg.journal_dir).acquire())
        except InstanceLocked as e:
            print(f"engine: journal {e}", file=sys.stderr)
            return 2
    if args.durability:
        cfg.journal_durability = args.durability
    if args.group_us is not None:
        cfg.journal_group_us = args.group_us
    journal = _open_journal(cfg.journal_dir, cfg.journal_durability,
                            cfg.journal_group_us) if cfg.journal_dir else None
    if journal is not None:
        from oms_core.identity import IdentityError, record_identity

        try:  # ids by name: the table beside the journal (oms_core/identity.py)
            record_identity(cfg.oms, journal_empty=journal.committed_seq == 0)
        except IdentityError as e:
            journal.close()
            print(f"configuration refused: {e}", file=sys.stderr)
            return 2
    if journal is not None:  # recovery, periodic snapshots: startup.py; gate: reconcile.py
        from .reconcile import gate_after_restart, reconcile_after_restart
        from .startup import EngineSnapshots, describe, recover_engine
    engine = Engine(build_core(cfg), journal=journal, config=cfg)
    engine.install_signal_handlers()
    if _STOP_SIGNALS:
        engine.stop()
    res = None
    do_recon = False
    if journal is not None:
        from oms_core.recovery import JournalVersionError

        try:
            res = recover_engine(engine, cfg.journal_dir)
        except JournalVersionError as e:
            journal.close()
            print(f"engine: journal {cfg.journal_dir}: {e}", file=sys.stderr)
            return 2
        journal.snapshots = EngineSnapshots(engine, cfg.journal_dir, args.snapshot_every,
                                            args.snapshot_seconds)
        do_recon = res.last_seq > 0 and not args.no_reconcile and not engine.stopping
        if do_recon:
            gate_after_restart(engine, res)
        print("RECOVERED " + describe(res), flush=True)
    if engine.stopping:  # stopped while starting: nothing was served, nothing to drain
        if journal is not None:
            journal.close()
        print("STOPPED " + json.dumps(engine.stats()), flush=True)
        return 0
    try:
        engine.bind()
    except BindError as e:
        print(f"engine: {e}", file=sys.stderr)
        if engine.ctx is not None:
            engine.ctx.destroy(0)
        if journal is not None:
            journal.close()
        return 2
    print("LISTENING " + json.dumps(engine.endpoints), flush=True)
    if not args.no_reconcile:
        from .reconcile import Reconciler

        def reconciled(report: dict[str, Any]) -> None:
            print("RECONCILED " + json.dumps(report), flush=True)

        engine.reconciler = Reconciler(engine, args.reconcile_timeout, on_report=reconciled,
                                       unknown_after_s=args.unknown_reconcile_s)
    if res is not None and do_recon:
        # after the journal, before any client is served: ask every gateway (reconcile.py);
        # gateways that say hello later are asked while the engine runs
        reconcile_after_restart(engine, res, args.reconcile_timeout)
        if not engine.stopping:
            print("RECONCILED " + json.dumps(engine.reconciler.report()), flush=True)

    def ready() -> None:
        print("READY " + json.dumps(engine.endpoints), flush=True)

    engine.run(ready)
    print("STOPPED " + json.dumps(engine.stats()), flush=True)
    return EXIT_JOURNAL_FAILED if engine.journal_error is not None else 0


if __name__ == "__main__":
    code = main()
    _ignore_stop_signals()
    sys.exit(code)
