"""The supervisor behind ``oms run``: starts the processes of one configuration, restarts a
crashed one with exponential back-off, answers status requests, and stops them all in order.

Cold code, plain Python. What runs, from one configuration file (``oms_core/config.py``):

* paper mode: one simulated exchange (``python -m gateways.sim``) per configured exchange,
  with one venue account per client that has an account there (keys generated into the run
  directory, mode 0600; balances: the client's cash, see :func:`paper_balances`), the
  latency, fills and market of the exchange's ``sim_profile`` (:func:`sim_settings`), and
  its memory kept beside the journal across runs (:func:`paper_state_file`: a restart goes
  on with the venue's balances, open orders and trades, as a real venue would);
  live mode: no simulator, the gateways reach the configured venues;
* per shard (``clients.<name>.shard``): an engine (``python -m oms_core.engine --config FILE
  --shard K``), one gateway per exchange (``python -m gateways``) that trades every venue
  account of the shard's clients there, each on its own credentials (``accounts`` in the
  gateway's file: env var names or file paths, never the values; live mode: the clients'
  ``exchange_accounts.<exchange>``), and a writer (``python -m writer``) with its own journal
  directory and DuckDB file. Each gateway gets the asset table (venue asset -> engine asset
  id, decimals) so fees carry the asset charged and balances are reported.

Start order: simulators, engines, writers, gateways. Stop order (SIGTERM to each, then wait):
gateways, engines (they drain and close their journals), writers (they flush), one last
writer pass that copies from the journal whatever the live stream dropped, simulators. An
engine counts as started once its sockets are bound (``LISTENING``): after a restart it
reconciles with the gateways started after it and trades once they answered; its last
``RECONCILED`` line (the verdict, and why trading stays halted) is in the status.

Each child's stdout and stderr go to ``<run dir>/logs/<name>.log``. ``<run dir>/state.json``
and the status endpoint (``[engine] health``, ZeroMQ REP) say what runs, since when, and how
often it was restarted.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import tomli_w

from oms_core.backoff import Backoff
from oms_core.config import OmsConfig, SimProfile
from oms_core.engine.config import shard_endpoint
from oms_core.engine.process import stop_with_parent, stop_with_parent_signals_held

ROOT = Path(__file__).resolve().parents[1]

# paper mode: starting mid prices of the simulated exchange by base asset (decimal strings);
# anything else starts at 100
PAPER_PRICES = {"BTC": "50000", "ETH": "3000", "SOL": "150", "BNB": "600", "XRP": "0.5"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ processes
@dataclass
class ChildSpec:
    """How to run one child process."""

    name: str
    argv: list[str]
    stop_rank: int  # lower stops first
    ready_line: str = ""  # the child is ready when its output has a line starting with this
    ready_file: str = ""  # ... or when this file exists
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 20.0
    after_stop: list[str] = field(default_factory=list)  # run once after the final stop
    shard: int | None = None
    restart: bool = True
    report_line: str = ""  # status shows the last output line starting with this (JSON)
    # it unblocks SIGTERM / SIGINT once its handlers exist: start it with them held
    holds_stop_signals: bool = False


@dataclass
class Child:
    spec: ChildSpec
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    failures: int = 0  # consecutive crashes (reset when it stays up `stable_s`)
    last_start: float = 0.0
    next_start: float = 0.0  # monotonic time of a scheduled restart, 0 = none
    last_exit: int | None = None
    ready_info: str = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


# the keys of an engine's RECONCILED report the status endpoint shows: the verdict (the
# per-account details, balance differences, booked fills and adopted orders, are not for it)
PUBLIC_REPORT = ("ok", "missing", "why", "halted")


class Supervisor:
    """Run ``specs`` as child processes; restart crashed ones with exponential back-off.

    Parameters
    ----------
    specs : sequence of ChildSpec
        In start order.
    run_dir : Path
        Logs (``logs/``) and ``state.json`` go here.
    status_endpoint : str, optional
        ZeroMQ REP endpoint answering ``status`` (JSON, :meth:`public_status`) and
        ``health`` requests; unauthenticated, so it never tells an account's data.
    backoff_s, backoff_max_s : float
        First restart delay and its cap; the delay doubles with each consecutive crash.
    stable_s : float
        A child that ran this long before crashing starts again from the first delay.
    """

    def __init__(self, specs: Sequence[ChildSpec], run_dir: Path,
                 status_endpoint: str | None = None, backoff_s: float = 0.5,
                 backoff_max_s: float = 30.0, stable_s: float = 30.0,
                 info: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.children = [Child(s, self.run_dir / "logs" / f"{s.name}.log") for s in specs]
        self.status_endpoint = status_endpoint
        self.stable_s = stable_s
        self.restart_backoff = Backoff(backoff_s, backoff_max_s, jitter=False)
        self.info = info or {}
        self.started = time.time()
        self.stopping = False
        self._rep: Any = None
        self._ctx: Any = None

    # -- one child
    def _spawn(self, c: Child) -> None:
        if c.spec.ready_file:
            Path(c.spec.ready_file).unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **c.spec.env}
        with open(c.log, "ab") as out:
            out.write(f"--- start {c.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            c.proc = subprocess.Popen(c.spec.argv, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=self.run_dir, env=env,
                                      start_new_session=True,
                                      preexec_fn=stop_with_parent_signals_held
                                      if c.spec.holds_stop_signals else stop_with_parent)
        c.starts += 1
        c.last_start = time.monotonic()
        c.next_start = 0.0
        c.ready_info = ""

    def _ready(self, c: Child) -> bool:
        if c.spec.ready_file:
            p = Path(c.spec.ready_file)
            if p.exists() and p.stat().st_size:
                c.ready_info = p.read_text().strip()
                return True
            return False
        if c.spec.ready_line:
            try:
                text = c.log.read_text(errors="replace")
            except OSError:
                return False
            # only the output of the current start counts
            text = text.rsplit(f"--- start {c.starts} at", 1)[-1]
            for line in text.splitlines():
                if line.startswith(c.spec.ready_line):
                    c.ready_info = line[len(c.spec.ready_line):].strip()
                    return True
            return False
        return time.monotonic() - c.last_start > 0.3

    def _last_report(self, c: Child) -> Any:
        """The JSON of the child's last ``report_line`` of its current start (None: none)."""
        if not c.spec.report_line:
            return None
        try:
            text = c.log.read_text(errors="replace")
        except OSError:
            return None
        text = text.rsplit(f"--- start {c.starts} at", 1)[-1]
        at = text.rfind("\n" + c.spec.report_line)
        if at < 0:
            return None
        line = text[at + 1 + len(c.spec.report_line):].partition("\n")[0]
        try:
            return json.loads(line)
        except ValueError:
            return None

    def _wait_ready(self, c: Child, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._ready(c):
                return
            assert c.proc is not None
            if c.proc.poll() is not None:
                tail = c.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{c.spec.name} exited with status {c.proc.returncode} "
                                   f"while starting; log {c.log}:\n{tail}")
            time.sleep(0.05)
        raise RuntimeError(f"{c.spec.name} not ready after {timeout:.0f} s; log {c.log}")

    # -- all of them
    def start(self, timeout: float = 30.0) -> None:
        """Start every child in order, each after the previous one is ready."""
        self._open_status()
        try:
            for c in self.children:
                self._spawn(c)
                self._wait_ready(c, timeout)
        except Exception:
            self.shutdown()
            raise
        self.write_state()

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.spec.name == name)

    def step(self) -> None:
        """Notice exits, schedule and perform restarts, answer status requests."""
        now = time.monotonic()
        changed = False
        for c in self.children:
            if c.proc is None:
                continue
            code = c.proc.poll()
            if code is not None and c.last_exit is None and not c.spec.restart:
                c.last_exit = code
                changed = True
            elif code is not None and c.next_start == 0.0 and not self.stopping \
                    and c.spec.restart:
                c.last_exit = code
                ran = now - c.last_start
                c.failures = 1 if ran >= self.stable_s else c.failures + 1
                delay = self.restart_backoff.ceiling(c.failures - 1)
                c.next_start = now + delay
                with open(c.log, "ab") as out:
                    out.write(f"--- exited with {code} after {ran:.1f} s; restart in "
                              f"{delay:.1f} s\n".encode())
                changed = True
            elif c.next_start and now >= c.next_start and not self.stopping:
                self._spawn(c)
                changed = True
        if changed:
            self.write_state()
        self._answer_status()

    def serve(self, should_stop: Callable[[], bool], period: float = 0.05) -> None:
        """Supervise until ``should_stop()`` is true."""
        while not should_stop():
            self.step()
            time.sleep(period)

    def shutdown(self) -> dict[str, int | None]:
        """SIGTERM the children rank by rank (each rank waited for), SIGKILL what stays;
        return each child's exit status."""
        self.stopping = True
        codes: dict[str, int | None] = {}
        for rank in sorted({c.spec.stop_rank for c in self.children}):
            group = [c for c in self.children if c.spec.stop_rank == rank]
            for c in group:
                if c.proc is not None and c.proc.poll() is None:
                    c.proc.send_signal(signal.SIGTERM)
            for c in group:
                if c.proc is None:
                    continue
                try:
                    codes[c.spec.name] = c.proc.wait(c.spec.stop_timeout)
                except subprocess.TimeoutExpired:
                    c.proc.kill()
                    codes[c.spec.name] = c.proc.wait(5)
                c.last_exit = codes[c.spec.name]
            for c in group:
                if c.spec.after_stop:
                    env = {**os.environ, "PYTHONPATH": str(ROOT)}
                    with open(c.log, "ab") as out:
                        out.write(b"--- final pass\n")
                        out.flush()
                        r = subprocess.run(c.spec.after_stop, stdout=out,
                                           stderr=subprocess.STDOUT, cwd=self.run_dir, env=env,
                                           timeout=60)
                    if r.returncode:
                        codes[c.spec.name + ":final"] = r.returncode
        self.write_state()
        self._close_status()
        remove_sockets(self.run_dir)
        return codes

    # -- status
    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        procs = []
        for c in self.children:
            alive = c.proc is not None and c.proc.poll() is None
            procs.append({
                "name": c.spec.name, "pid": c.pid, "alive": alive, "starts": c.starts,
                "restarts": max(0, c.starts - 1), "last_exit": c.last_exit,
                "up_s": round(now - c.last_start, 1) if alive else 0.0,
                "restart_in_s": round(max(0.0, c.next_start - now), 1) if c.next_start else None,
                "shard": c.spec.shard, "ready": c.ready_info[:300],
                **({"report": self._last_report(c)} if c.spec.report_line else {}),
            })
        return {"pid": os.getpid(), "since": self.started, "stopping": self.stopping,
                "processes": procs, **self.info}

    def public_status(self) -> dict[str, Any]:
        """What the status endpoint answers (to anyone who reaches it: no key): the status
        with each report cut to :data:`PUBLIC_REPORT` (its account data stays in the log
        and ``state.json``)."""
        out = self.status()
        for p in out["processes"]:
            if isinstance(p.get("report"), dict):
                p["report"] = {k: p["report"][k] for k in PUBLIC_REPORT if k in p["report"]}
        return out

    def write_state(self) -> None:
        tmp = self.run_dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.status(), indent=1))
        os.replace(tmp, self.run_dir / "state.json")

    def _open_status(self) -> None:
        if not self.status_endpoint or self._rep is not None:
            return
        import zmq

        self._ctx = zmq.Context()
        self._rep = self._ctx.socket(zmq.REP)
        self._rep.setsockopt(zmq.LINGER, 0)
        try:
            self._rep.bind(self.status_endpoint)
        except zmq.ZMQError as e:
            self._close_status()
            raise RuntimeError(f"cannot bind the status endpoint {self.status_endpoint}: "
                               f"{zmq.strerror(e.errno)}") from None

    def _answer_status(self) -> None:
        if self._rep is None:
            return
        import zmq

        for _ in range(16):
            try:
                req = self._rep.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            reply = {"status": self.public_status(), "health": {"ok": True}}.get(
                req.decode(errors="replace").strip(), {"error": "ask 'status' or 'health'"})
            self._rep.send(json.dumps(reply).encode())

    def _close_status(self) -> None:
        if self._rep is not None:
            self._rep.close(0)
            self._ctx.term()
            self._rep = None


def remove_sockets(directory: Path) -> list[Path]:
    """Delete the ipc:// socket files left in ``directory`` (after every child stopped: a
    child killed -9 leaves its bound socket file behind)."""
    import stat

    gone = []
    for p in Path(directory).iterdir():
        try:
            if stat.S_ISSOCK(p.lstat().st_mode):
                p.unlink()
                gone.append(p)
        except OSError:
            continue
    return gone


def ask_status(endpoint: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Ask a running supervisor for its status; None when nobody answers."""
    import zmq

    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        s.send(b"status")
        if not s.poll(int(timeout_s * 1000)):
            return None
        return json.loads(s.recv())
    finally:
        s.close()


# ------------------------------------------------------------------------------ the plan
def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)


def _fmt(raw: int, precision: int) -> str:
    from decimal import Decimal

    return format(Decimal(raw).scaleb(-precision).normalize(), "f")


def shards_of(cfg: OmsConfig) -> list[int]:
    return sorted({c.shard for c in cfg.clients.values()})


def database_of(cfg: OmsConfig, shard: int, n_shards: int) -> str:
    """The DuckDB file of ``shard``: the configured one, with ``-shardK`` when sharded."""
    db = Path(cfg.writer.database)
    return str(db if n_shards == 1 else db.with_name(f"{db.stem}-shard{shard}{db.suffix}"))


def sim_settings(p: SimProfile) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The simulator's own settings (top-level keys, and its ``market`` and ``latency``
    tables; gateways/sim/config.py) for an exchange's paper profile."""
    market = {"tick_ms": p.tick_ms, "volatility_bps": p.volatility_bps,
              "market_order_prob": p.market_order_probability, "spread_ticks": p.spread_ticks,
              "level_qty": p.level_qty, "fill_probability": p.fill_probability,
              "partial_fill_prob": p.partial_fill_probability,
              "fill_at_touch": p.fill_at_touch}
    latency = {"dist": p.latency, "ms": p.latency_ms, "sd_ms": p.latency_sd_ms,
               "sigma": p.latency_sigma, "min_ms": p.latency_min_ms, "max_ms": p.latency_max_ms}
    return {"reject_probability": p.reject_probability}, {"market": market, "latency": latency}


def plan(cfg: OmsConfig, config_path: str, run_dir: Path, *, seed: int = 1,
         insecure: bool = False) -> tuple[list[ChildSpec], dict[str, Any]]:
    """The child processes of ``cfg`` (and the files they read, written into ``run_dir``).

    With security on, the keys the configuration needs and lacks are generated first (see
    ``oms keys``); every child gets the files of its own key, never a key value. With it
    off, an endpoint reachable from other hosts is refused unless ``insecure``."""
    from oms_core import security

    security.check_insecure(cfg, insecure)
    secure = security.security_on(cfg)
    if secure:
        try:
            made = security.write_keys(cfg, missing_only=True)
        except OSError as e:  # e.g. a container's read-only keys mount without the keys
            raise ValueError(
                f"security is on and keys are missing in {cfg.security.keys_dir}, which "
                f"cannot be written ({e.strerror}): make them with `oms keys --config FILE` "
                "where that directory is writable (docker: README, Containers)") from None
        if made:
            print(f"oms: security on: generated the CURVE keys {', '.join(made)} in "
                  f"{cfg.security.keys_dir}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    shards = shards_of(cfg)
    paper = cfg.mode == "paper"
    if cfg.mode == "replay":
        raise ValueError("mode = \"replay\" runs with `oms replay`, not `oms run`")
    specs: list[ChildSpec] = []
    gateways: list[ChildSpec] = []
    info: dict[str, Any] = {"mode": cfg.mode, "config": str(config_path), "shards": {},
                            "run_dir": str(run_dir)}
    venues: dict[str, tuple[str, str]] = {}  # exchange -> (rest base url, ws url)
    sim_keys: dict[tuple[str, str], tuple[Path, Path]] = {}  # (exchange, client) -> files
    for ex in cfg.exchanges.values():
        if not paper:
            venues[ex.name] = (ex.rest_url.removesuffix("/api/v3"), ex.ws_url)
            continue
        port = urlparse(ex.rest_url).port if ex.rest_url else None
        port = port or free_port()
        symbols = []
        for i in cfg.instruments.values():
            if i.exchange != ex.name:
                continue
            symbols.append({
                "symbol": i.exchange_symbol, "base": i.base, "quote": i.quote,
                "tick_size": _fmt(i.tick, i.price_precision),
                "step_size": _fmt(i.lot, i.qty_precision),
                "min_qty": _fmt(i.min_qty, i.qty_precision),
                "max_qty": _fmt(i.max_qty, i.qty_precision),
                "min_notional": _fmt(i.min_notional, cfg.assets[i.quote].precision),
                "initial_price": PAPER_PRICES.get(i.base, "100"),
                "maker_bps": ex.maker_fee_bps, "taker_bps": ex.taker_fee_bps,
            })
        accounts = []
        for c in cfg.clients.values():
            if ex.name not in c.exchange_accounts:
                continue
            key_file, sec_file = sim_key_files(run_dir, ex.name, c.name)
            _write_secret(key_file, f"oms-paper-{ex.name}-{c.name}-{secrets.token_hex(4)}")
            _write_secret(sec_file, secrets.token_hex(24))
            sim_keys[(ex.name, c.name)] = (key_file, sec_file)
            accounts.append({"name": c.exchange_accounts[ex.name].account,
                             "api_key": key_file.read_text(), "secret_file": str(sec_file),
                             "balances": paper_balances(cfg, c.name, ex.name)})
        sim_toml = run_dir / f"sim-{ex.name}.toml"
        top, tables = sim_settings(ex.sim)
        # ids from the clock: the paper venue of a restarted `oms run` never reuses a trade
        # id the engine already booked (it would be refused as a duplicate fill)
        sim_toml.write_text(tomli_w.dumps({
            "seed": seed, "first_id": time.time_ns() // 1000, **top, **tables,
            "symbols": symbols, "accounts": accounts}))
        ports = run_dir / f"sim-{ex.name}.json"
        specs.append(ChildSpec(f"sim-{ex.name}", [
            py, "-m", "gateways.sim", "--host", "127.0.0.1", "--port", str(port), "--config",
            str(sim_toml), "--ports-file", str(ports), "--state",
            str(paper_state_file(cfg, ex.name))], stop_rank=4, ready_file=str(ports),
            holds_stop_signals=True))
        venues[ex.name] = (f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
    engines, writers = [], []
    for k in shards:
        journal = Path(cfg.engine.journal_dir).resolve() / f"shard-{k}"
        journal.mkdir(parents=True, exist_ok=True)
        writer_ep = f"tcp://127.0.0.1:{free_port()}"
        db = str(Path(database_of(cfg, k, len(shards))).resolve())
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        engines.append(ChildSpec(f"engine-{k}", [
            py, "-m", "oms_core.engine", "--config", str(config_path), "--shard", str(k),
            "--writer", writer_ep, "--journal", str(journal), "--log-level", "WARNING",
            *(["--insecure"] if insecure else [])],
            # bound is enough: the gateways started after it answer its reconciliation
            stop_rank=1, ready_line="LISTENING ", stop_timeout=30.0, shard=k,
            report_line="RECONCILED ", holds_stop_signals=True))
        wargs = [py, "-m", "writer", "--engine", writer_ep, "--journal", str(journal), "--db",
                 db, "--flush-ms", str(cfg.writer.flush_interval_ms)]
        if secure:
            for opt, path in security.curve_files(cfg, security.WRITER_KEY).items():
                wargs += [f"--{opt.replace('_', '-')}", path]
        writers.append(ChildSpec(f"writer-{k}", wargs, stop_rank=2, stop_timeout=30.0,
                                 after_stop=wargs + ["--max-seconds", "0.3"], shard=k,
                                 holds_stop_signals=True))
        info["shards"][str(k)] = {
            "commands": shard_endpoint(cfg.engine.commands, k),
            "events": shard_endpoint(cfg.engine.events, k), "writer": writer_ep,
            "journal": str(journal), "database": db,
            "clients": [c.name for c in cfg.clients.values() if c.shard == k]}
        for ex in cfg.exchanges.values():
            if cfg.venue_accounts(ex.name, k):
                gateways.append(_gateway(cfg, ex.name, k, run_dir, venues[ex.name],
                                         sim_keys if paper else None))
    return specs + engines + writers + gateways, info


def paper_state_file(cfg: OmsConfig, exchange: str) -> Path:
    """Where the simulated venue ``exchange`` keeps its state between runs (its accounts'
    balances, orders and trades): beside the journal, whose positions it must go on
    matching."""
    return Path(cfg.engine.journal_dir).resolve() / f"paper-{exchange}.json"


def sim_key_files(run_dir: Path, exchange: str, client: str) -> tuple[Path, Path]:
    """The generated API key and secret files of ``client``'s simulated venue account."""
    return (run_dir / f"sim-{exchange}-{client}.key",
            run_dir / f"sim-{exchange}-{client}.secret")


def paper_balances(cfg: OmsConfig, client: str, exchange: str) -> dict[str, str]:
    """The starting balances of ``client``'s simulated account at ``exchange``: its cash,
    each asset split evenly (the remainder at the first) over the client's exchanges that
    list the asset (all of them when none does), so the venues together hold what the
    engine's ledger holds."""
    c = cfg.clients[client]
    venues = [x for x in cfg.exchanges if x in c.exchange_accounts]
    out = {}
    for asset, raw in c.cash.items():
        listing = [x for x in venues if any(
            i.exchange == x and asset in (i.base, i.quote) for i in cfg.instruments.values())]
        holders = listing or venues
        if exchange in holders:
            n = len(holders)
            share = raw // n + (raw % n if exchange == holders[0] else 0)
            out[asset] = _fmt(share, cfg.assets[asset].precision)
    return out


# the simulator's REST API through ccxt's own binance client (only its URLs changed)
SIM_CCXT_OPTIONS = {"enableRateLimit": False, "timeout": 10_000, "options": {
    "defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
    "fetchMargins": False}}


def _gateway(cfg: OmsConfig, exchange: str, shard: int, run_dir: Path, venue: tuple[str, str],
             sim_keys: dict[tuple[str, str], tuple[Path, Path]] | None) -> ChildSpec:
    """The gateway of (``exchange``, ``shard``): one session per venue account of the shard's
    clients there (paper: the generated simulator keys; live: the clients' credentials by
    reference), the asset table, and the engine link."""
    ex = cfg.exchanges[exchange]
    ccxt = ex.kind == "ccxt"
    clients = cfg.venue_accounts(exchange, shard)
    top: dict[str, Any] = {
        "kind": "ccxt" if ccxt else "binance", "gateway_id": ex.id,
        "account_id": clients[0].id, "rest_url": venue[0], "ws_url": venue[1],
        "client_order_prefix": f"oms{shard}-",
    }
    if ccxt:
        top["exchange"] = ex.ccxt_id
    accounts: list[dict[str, Any]] = []
    for c in clients:
        acct = c.exchange_accounts[exchange]
        a: dict[str, Any] = {"account_id": c.id, "name": acct.account}
        if sim_keys is not None:
            key_file, sec_file = sim_keys[(exchange, c.name)]
            a["api_key_file"], a["api_secret_file"] = str(key_file), str(sec_file)
        else:
            for what, cred in (("api_key", acct.api_key), ("api_secret", acct.api_secret)):
                if cred.file:
                    a[f"{what}_file"] = cred.file
                else:
                    a[f"{what}_env"] = cred.env
        accounts.append(a)
    tables: dict[str, dict[str, Any]] = {}
    if ccxt and sim_keys is not None:
        # paper: ccxt's REST client on the simulator (books and trades polled)
        top["ccxt_websocket"] = False
        tables["ccxt_options"] = SIM_CCXT_OPTIONS
        tables["ccxt_urls"] = {"public": venue[0] + "/api/v3", "private": venue[0] + "/api/v3",
                               "v1": venue[0] + "/api/v1"}
    tables["assets"] = {a.name: [a.id, a.precision] for a in cfg.assets.values()}
    engine = {"orders": shard_endpoint(ex.orders, shard),
              "events": shard_endpoint(ex.events, shard),
              "market_data": shard_endpoint(ex.market_data, shard), "bind": False}
    from oms_core import security

    if security.security_on(cfg):
        engine.update(security.curve_files(cfg, security.gateway_key(exchange)))
    instruments = [{"id": i.id, "symbol": f"{i.base}/{i.quote}" if ccxt else i.exchange_symbol,
                    "price_decimals": i.price_precision, "qty_decimals": i.qty_precision}
                   for i in cfg.instruments.values() if i.exchange == exchange]
    path = run_dir / f"gateway-{exchange}-s{shard}.toml"
    path.write_text(tomli_w.dumps({**top, "engine": engine, **tables,
                                   "instruments": instruments, "accounts": accounts}))
    return ChildSpec(f"gateway-{exchange}-{shard}", [
        sys.executable, "-m", "gateways", "--config", str(path), "--log-level", "WARNING"],
        stop_rank=0, shard=shard, holds_stop_signals=True)


__all__ = ["ChildSpec", "Supervisor", "ask_status", "database_of", "free_port",
           "paper_balances", "paper_state_file", "plan", "remove_sockets", "shards_of",
           "sim_key_files", "sim_settings"]
