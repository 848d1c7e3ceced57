"""The container stack of docker/docker-compose.yml, built and run under podman.

Real image, real containers: the local Debian base images (docker/base-image.sh, cached), the
image built from docker/Dockerfile by the compose file itself, and its two services on the
host's network (docker/podman-compose.sh holds this host's podman settings): ``oms``, which
runs ``oms run`` (the supervisor, with the simulated exchange, the engine, the gateway and
the writer), and the example publisher. The supervisor's status endpoint answers from the
host and the container's health check asks it; ``oms status`` runs inside the container;
the publisher's signals are answered by the engine.
Orders go through bindings/client.py to the engine's published port; their fills are read
back at the simulator from each client's own venue account (signed REST with the keys
``oms run`` generated for it). Then the whole stack goes ``down`` and ``up`` again over the
same volumes: the journal, the paper venue's state and DuckDB carry on, the engine
reconciles and trades without an admin, and its positions equal each venue account's
trades. At the end it stops with exit code 0 everywhere; the files left on the volumes hold
every venue trade booked exactly once, each in its own client's account. Then everything is
removed (containers, volumes, the built image; the base images stay cached).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bindings.client import OmsClient
from bindings.security import CurveClientKeys, client_keys_from_files, load_keypair
from oms_core.config import OmsConfig, load_config
from oms_core.enums import OrderStatus, Reject, Side
from oms_core.supervisor import ask_status

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(shutil.which("podman") is None or shutil.which("podman-compose") is None,
                       reason="podman and podman-compose are not installed (.ci/run installs "
                              "them)"),
]

PROJECT = "omstest"
OMS = f"{PROJECT}_oms_1"
PUBLISHER = f"{PROJECT}_publisher_1"
COMMANDS = "tcp://127.0.0.1:5560"
STATUS = "tcp://127.0.0.1:5563"  # the supervisor's ([engine] health of docker/oms.toml)
SIM = ("127.0.0.1", 8765)
READER_IP = "127.0.0.2"  # the venue counts request weight per IP: not the gateway's budget
# the stack's fixed ports on the host's network (docker/oms.toml)
PORTS = [5560, 5561, 5562, 5563, 5570, 5571, 5572, 8765]
PROCESSES = {"sim-sim", "engine-0", "writer-0", "gateway-sim-0"}
CLIENTS = ("alice", "bob", "carol")
CLIENT_ORDER_PREFIX = "oms0-"  # the gateway's, for shard 0 (oms_core/supervisor.py)
# one market order per client, in a strategy the client trades (docker/oms.toml)
ORDERS = {"alice": ("BTCUSDT", "trend", "0.001"), "bob": ("ETHUSDT", "trend", "0.01"),
          "carol": ("SOLUSDT", "breakout", "1")}


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}: {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def copy_tree(dest: Path) -> Path:
    """The repository's files (tracked and new, never ignored ones: no .so, .venv, ...)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True, timeout=60).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def engine_order_id(client_order_id: str) -> int:
    """The engine order id in the gateway's client order id (``<prefix><order id>``), or -1."""
    tail = client_order_id.removeprefix(CLIENT_ORDER_PREFIX)
    return int(tail) if client_order_id.startswith(CLIENT_ORDER_PREFIX) and tail.isdigit() \
        else -1


def make_keys(src: Path, env: dict[str, str]) -> Path:
    """What the README says to do before ``up``: ``oms keys --config docker/oms.toml`` on the
    host (into docker/keys), then the files given to the container's user (the Dockerfile's
    fixed uid), which reads them from its read-only mount."""
    run([sys.executable, "-m", "oms_core.cli", "keys", "--config",
         str(src / "docker" / "oms.toml")], src, {**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    keys = src / "docker" / "keys"
    uid = re.search(r"useradd --system --uid (\d+) ", (src / "docker" / "Dockerfile").read_text())
    assert uid is not None
    for p in [keys, *keys.iterdir()]:
        os.chown(p, int(uid.group(1)), int(uid.group(1)))
    return keys


def operator_keys_of(keys: Path) -> CurveClientKeys:
    """The operator's CURVE keys from the host's keys directory (security is on in
    docker/oms.toml)."""
    out = client_keys_from_files(keys / "operator.key_secret", keys / "engine.key")
    assert out is not None
    return out


def assert_keys_mounted_read_only_and_nowhere_else(keys: Path, env: dict[str, str]) -> None:
    """The oms container has the host's keys directory as its one bind mount, the publisher
    its own secret and the engine's public key, all read-only; no secret key is in either's
    environment or command line."""
    want = {OMS: [f"{keys}:/etc/oms/keys:false"],
            PUBLISHER: sorted(f"{keys}/{f}:/etc/oms/keys/{f}:false"
                              for f in ("operator.key_secret", "engine.key"))}
    for name in (OMS, PUBLISHER):
        binds = run(["podman", "inspect", "--format", "{{range .Mounts}}{{if eq .Type "
                     "\"bind\"}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}{{end}}", name],
                    ROOT, env, timeout=60).split()
        assert sorted(binds) == want[name], (name, binds)
        seen = run(["podman", "inspect", "--format", "{{.Config.Env}} {{.Config.Cmd}} "
                    "{{.Config.Entrypoint}} {{.Args}}", name], ROOT, env, timeout=60)
        for f in keys.glob("*.key_secret"):
            assert load_keypair(f).secret.decode() not in seen, (name, f.name)
    r = subprocess.run(["podman", "exec", OMS, "touch", "/etc/oms/keys/probe"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r


class VenueAccount:
    """One client's account at the simulator, read with the keys ``oms run`` generated for it
    (in the container's run directory; new ones at every start)."""

    def __init__(self, who: str, cfg: OmsConfig, env: dict[str, str]) -> None:
        def read(suffix: str) -> str:
            return run(["podman", "exec", OMS, "cat", f"/var/lib/oms/run/sim-sim-{who}.{suffix}"],
                       ROOT, env, timeout=60).strip()

        self.key, self.secret = read("key"), read("secret").encode()
        self.symbols = {i.exchange_symbol: i for i in cfg.instruments.values()}

    def get(self, path: str, **params: Any) -> Any:
        params["timestamp"] = int(time.time() * 1000)
        q = urllib.parse.urlencode(params)
        sig = hmac.new(self.secret, q.encode(), hashlib.sha256).hexdigest()
        conn = http.client.HTTPConnection(*SIM, timeout=10, source_address=(READER_IP, 0))
        try:
            conn.request("GET", f"/api/v3{path}?{q}&signature={sig}",
                         headers={"X-MBX-APIKEY": self.key})
            r = conn.getresponse()
            body = json.loads(r.read())
            assert r.status == 200, (path, r.status, body)
            return body
        finally:
            conn.close()

    def orders(self) -> list[dict[str, Any]]:
        return [o for s in self.symbols for o in self.get("/allOrders", symbol=s)]

    def positions(self) -> dict[str, Decimal]:
        """Instrument -> the net quantity of this account's trades (zeros left out)."""
        out: dict[str, Decimal] = defaultdict(Decimal)
        for s in self.symbols:
            for t in self.get("/myTrades", symbol=s):
                out[s] += Decimal(t["qty"]) * (1 if t["isBuyer"] else -1)
        return {s: q for s, q in out.items() if q}


def wait_supervised(timeout: float = 180.0) -> dict[str, Any]:
    """The supervisor's status, once every process of the configuration runs and the
    engine's reconciliation (after a restart) lets it trade."""
    end = time.monotonic() + timeout
    while True:
        status = ask_status(STATUS, timeout_s=2.0)
        procs = {p["name"]: p for p in (status or {}).get("processes", [])}
        report = procs.get("engine-0", {}).get("report") or {}
        if set(procs) == PROCESSES and all(p["alive"] for p in procs.values()) \
                and report.get("ok") and report.get("halted") is False:
            return status  # type: ignore[return-value]
        assert time.monotonic() < end, status
        time.sleep(1.0)


def wait_publisher_answered(env: dict[str, str], timeout: float = 180.0) -> None:
    """The publisher container sent a signal and the engine answered it, client by client
    (``examples/publisher.py`` prints each answer indented under the signal's line)."""
    end = time.monotonic() + timeout
    while True:
        out = subprocess.run(["podman", "logs", PUBLISHER], capture_output=True, text=True,
                             timeout=60)
        if any(line.startswith("    ") for line in out.stdout.splitlines()):
            return
        assert time.monotonic() < end, out.stdout[-2000:] + out.stderr[-2000:]
        time.sleep(2.0)


def quiesce(compose: list[str], client: OmsClient, cwd: Path, env: dict[str, str]) -> None:
    """Stop the publisher (it exits 0 and says how many signals it sent), then cancel every
    resting order with `oms cancel` in the container, so that this test's market orders
    cross none of the same account's orders (the engine refuses a self-trade) and the venue
    is still while it is compared with the engine."""
    run(compose + ["stop", "publisher"], cwd, env, timeout=300)
    code = run(["podman", "inspect", "--format", "{{.State.ExitCode}}", PUBLISHER], cwd, env,
               timeout=60).strip()
    log = subprocess.run(["podman", "logs", PUBLISHER], capture_output=True, text=True,
                         timeout=60)
    assert code == "0" and "publisher: " in log.stdout + log.stderr, (code, log.stdout[-2000:])
    run(["podman", "exec", OMS, "oms", "cancel", "--config", "/etc/oms/oms.toml"], cwd, env,
        timeout=120)
    end = time.monotonic() + 60
    while True:  # the venue's cancels come back
        resting = {who: ids for who in CLIENTS
                   if (ids := [o.order_id for o in client.orders(account=who).rows])}
        if not resting:
            return
        assert time.monotonic() < end, resting
        time.sleep(0.5)


def trade_each_client(client: OmsClient, side: Side) -> dict[str, int]:
    """One market order per client; the engine's order id of each."""
    placed = {}
    for who, (symbol, strategy, qty) in ORDERS.items():
        end = time.monotonic() + 90
        while True:  # until the gateway has published prices
            r = client.submit(symbol, side, qty, account=who, strategy=strategy)
            if r.ok or time.monotonic() > end or r.code not in (
                    Reject.NO_REFERENCE_PRICE, Reject.STALE_REFERENCE_PRICE):
                break
            time.sleep(0.5)
        assert r.ok, (who, r)
        placed[who] = r.order_id
    return placed


def assert_filled_at_own_accounts(client: OmsClient, venues: dict[str, VenueAccount],
                                  placed: dict[str, int]) -> None:
    """Each order is FILLED in the engine, and FILLED at its client's venue account only."""
    end = time.monotonic() + 60
    while True:  # the engine books the fill the venue reported
        status = {who: {o.order_id: o.status
                        for o in client.orders(open_only=False, account=who).rows}
                  for who in placed}
        if all(status[who].get(oid) == OrderStatus.FILLED for who, oid in placed.items()):
            break
        assert time.monotonic() < end, (placed, status)
        time.sleep(0.5)
    at_venue: dict[str, set[tuple[str, str]]] = {who: set() for who in placed}
    by_oid = {oid: who for who, oid in placed.items()}
    for owner in CLIENTS:
        for o in venues[owner].orders():
            who = by_oid.get(engine_order_id(o["clientOrderId"]))
            if who is not None:
                at_venue[who].add((o["status"], owner))
    assert at_venue == {who: {("FILLED", who)} for who in placed}, (placed, at_venue)


def assert_positions_equal_venue_trades(client: OmsClient, cfg: OmsConfig,
                                        venues: dict[str, VenueAccount]) -> None:
    """Each client's engine positions are its venue account's trades netted (read the venue
    before and after the engine, until the three agree: fills may be in flight)."""
    by_id = {i.id: i for i in cfg.instruments.values()}

    def engine(who: str) -> dict[str, Decimal]:
        return {by_id[p.instrument].symbol: Decimal(p.quantity).scaleb(
                    -by_id[p.instrument].qty_precision)
                for p in client.positions(account=who).rows if p.quantity}

    end = time.monotonic() + 90
    while True:
        before = {who: v.positions() for who, v in venues.items()}
        booked = {who: engine(who) for who in venues}
        after = {who: v.positions() for who, v in venues.items()}
        if before == booked == after:
            return
        assert time.monotonic() < end, (before, booked, after)
        time.sleep(2.0)


def volume_path(name: str, env: dict[str, str]) -> Path:
    return Path(run(["podman", "volume", "inspect", "--format", "{{.Mountpoint}}", name], ROOT,
                    env, timeout=60).strip())


def venue_trades(state_file: Path, cfg: OmsConfig) -> Counter[tuple[int, int, int]]:
    """(account id, engine order id, venue trade id) of every trade the paper venue saved."""
    state = json.loads(state_file.read_text())
    out: Counter[tuple[int, int, int]] = Counter()
    for name, acct in state["accounts"].items():
        account = cfg.clients[name].id
        cid = {r["order_id"]: r["client_order_id"] for r in acct["records"]}
        for t in acct["trades"]:
            out[(account, engine_order_id(cid[t["orderId"]]), int(t["id"]))] += 1
    return out


def booked_fills(database: Path) -> Counter[tuple[int, int, int]]:
    """(account id, engine order id, venue trade id) of every execution in DuckDB."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute("""
            with o as (select distinct order_id, account from orders)
            select o.account, e.order_id, e.trade_id from executions e join o using (order_id)
            """).fetchall()
    finally:
        con.close()
    return Counter((int(a), int(o), int(t)) for a, o, t in rows)


def test_compose_stack_builds_trades_goes_down_and_up_and_stops_under_podman(
        tmp_path: Path) -> None:
    busy = [p for p in PORTS if port_in_use(p)]
    assert not busy, f"the stack's ports are in use on 127.0.0.1: {busy}"
    src = copy_tree(tmp_path / "src")
    compose = ["bash", str(src / "docker" / "podman-compose.sh"), "-p", PROJECT]
    env = dict(os.environ)
    timings: dict[str, float] = {}
    names = [OMS, PUBLISHER]
    t0 = time.monotonic()
    run(["bash", str(src / "docker" / "base-image.sh")], src, env, timeout=1200)
    timings["base images"] = time.monotonic() - t0
    cfg = load_config(src / "docker" / "oms.toml")
    assert cfg.clients.keys() == set(CLIENTS)
    try:
        keys = make_keys(src, env)  # before the build: they must stay out of the image
        t0 = time.monotonic()
        # both services run one image: built once (podman-compose builds the services' images
        # in parallel, twice the same build on two cores), then up finds it
        run(compose + ["build", "oms"], src, env, timeout=1500)
        timings["image build"] = time.monotonic() - t0
        in_image = run(["podman", "run", "--rm", "--network", "host", "--entrypoint", "sh",
                        "localhost/oms:latest", "-c",
                        "find / -xdev -name '*.key_secret' 2>/dev/null; true"], src,
                       {**env, "CONTAINERS_CONF": str(src / "docker" / "containers.conf")},
                       timeout=120).split()
        assert in_image == [], in_image
        t0 = time.monotonic()
        run(compose + ["up", "-d"], src, env, timeout=300)
        timings["up"] = time.monotonic() - t0
        running = run(["podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
                       "--format", "{{.Names}}"], src, env, timeout=60).split()
        assert sorted(running) == sorted(names), running
        # what the containers mount: the two named volumes, nothing anonymous, and the keys
        mounts = set(run(["podman", "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}",
                          *names], src, env, timeout=60).split())
        assert mounts == {f"{PROJECT}_journal", f"{PROJECT}_db"}, mounts
        assert_keys_mounted_read_only_and_nowhere_else(keys, env)
        # the supervisor answers from the host; the container's health check asks it
        status = wait_supervised()
        assert status["mode"] == "paper", status
        run(["podman", "healthcheck", "run", OMS], src, env, timeout=120)
        venues = {who: VenueAccount(who, cfg, env) for who in CLIENTS}
        assert len({v.key for v in venues.values()}) == len(CLIENTS)  # an account each
        # the publisher's signals reach the engine by the service name and are answered
        wait_publisher_answered(env)
        with OmsClient(COMMANDS, config=cfg, timeout=5.0,
                       curve=operator_keys_of(keys)) as client:
            client.hello(CLIENTS, heartbeat_ms=0)
            quiesce(compose, client, src, env)
            first = trade_each_client(client, Side.BUY)
            assert_filled_at_own_accounts(client, venues, first)
        # `oms status` in the container: the supervisor's processes and every client
        out = json.loads(run(["podman", "exec", OMS, "oms", "status", "--config",
                              "/etc/oms/oms.toml", "--json", "--pings", "3"], src, env,
                             timeout=120))
        assert {p["name"] for p in out["supervisor"]["processes"]} == PROCESSES, out
        shard = out["shards"]["0"]
        assert shard["connected"] and set(shard["clients"]) == set(CLIENTS), shard

        # a full down and up over the same volumes (the venue saves its state as it stops)
        t0 = time.monotonic()
        run(compose + ["down"], src, env, timeout=300)
        left = run(["podman", "ps", "-a", "--filter",
                    f"label=io.podman.compose.project={PROJECT}", "--format", "{{.Names}}"],
                   src, env, timeout=60).split()
        assert left == [], left
        run(compose + ["up", "-d"], src, env, timeout=300)
        status = wait_supervised()
        timings["down and up"] = time.monotonic() - t0
        # the engine recovered from its journal and reconciled: trading without an admin
        report = next(p["report"] for p in status["processes"] if p["name"] == "engine-0")
        assert report and report["ok"] and not report["halted"], report
        venues = {who: VenueAccount(who, cfg, env) for who in CLIENTS}
        with OmsClient(COMMANDS, config=cfg, timeout=5.0,
                       curve=operator_keys_of(keys)) as client:
            client.hello(CLIENTS, heartbeat_ms=0)
            quiesce(compose, client, src, env)
            for who, oid in first.items():
                known = {o.order_id: o.status
                         for o in client.orders(open_only=False, account=who).rows}
                assert known.get(oid) == OrderStatus.FILLED, (who, oid, known)
            # (breakout is single-entry: carol is in, so the second round sells)
            second = trade_each_client(client, Side.SELL)
            assert set(second.values()).isdisjoint(first.values())
            assert_filled_at_own_accounts(client, venues, second)
            assert_positions_equal_venue_trades(client, cfg, venues)

        t0 = time.monotonic()
        run(compose + ["stop"], src, env, timeout=300)
        timings["stop"] = time.monotonic() - t0
        codes = {n: run(["podman", "inspect", "--format", "{{.State.ExitCode}}", n], src, env,
                        timeout=60).strip() for n in names}
        assert codes == {n: "0" for n in names}, codes
        # what the volumes hold: every trade of the venue (both runs) booked once in DuckDB,
        # in the account of the client whose venue account made it
        venue = venue_trades(volume_path(f"{PROJECT}_journal", env) / "paper-sim.json", cfg)
        db = tmp_path / "oms.duckdb"
        shutil.copy2(volume_path(f"{PROJECT}_db", env) / "oms.duckdb", db)
        booked = booked_fills(db)
        assert {oid for _, oid, _ in venue} >= set(first.values()) | set(second.values())
        assert max(venue.values()) == 1 and max(booked.values()) == 1, (venue, booked)
        assert booked == venue, (booked - venue, venue - booked)
    finally:
        # each container's output and the supervised processes' logs, in the test's tmp dir
        for name in names:
            with open(tmp_path / f"{name}.log", "wb") as log:
                subprocess.run(["podman", "logs", name], stdout=log, stderr=subprocess.STDOUT,
                               timeout=60)
        subprocess.run(["podman", "cp", f"{OMS}:/var/lib/oms/run/logs", str(tmp_path / "logs")],
                       capture_output=True, timeout=60)
        subprocess.run(compose + ["down", "-v", "-t", "30"], cwd=src, env=env,
                       capture_output=True, timeout=300)
        subprocess.run(["podman", "rmi", "-f", "localhost/oms:latest"], capture_output=True,
                       timeout=120)
        subprocess.run(["podman", "image", "prune", "-f"], capture_output=True, timeout=120)
    left = run(["podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={PROJECT}",
                "--format", "{{.Names}}"], src, env, timeout=60).split()
    kept = set(run(["podman", "volume", "ls", "--format", "{{.Name}}"], src, env,
                   timeout=60).split()) & {f"{PROJECT}_journal", f"{PROJECT}_db"}
    pods = run(["podman", "pod", "ls", "--filter", f"name=pod_{PROJECT}", "--format",
                "{{.Name}}"], src, env, timeout=60).split()
    assert (left, kept, pods) == ([], set(), [])
    print("podman timings (s):", {k: round(v, 1) for k, v in timings.items()})
