"""The container stack of docker/docker-compose.yml, built and run under podman.

Real image, real containers: the local Debian base images (docker/base-image.sh, cached), the
image built from docker/Dockerfile by the compose file itself, the five services each in its
own container on the host's network (docker/podman-compose.sh holds this host's podman
settings). Orders go through bindings/client.py to the engine's published port; their fills
are read back at the simulator from each client's own venue account (signed REST with that
account's keys); ``oms status`` runs inside the engine's container. Then the engine's
container is restarted over the same journal volume and the stack trades on; at the end it
stops with exit code 0 everywhere and is removed (containers, pod, volumes, the built image;
the base images stay cached).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bindings.client import OmsClient
from oms_core.config import load_config
from oms_core.enums import OrderStatus, Reject, Side

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(shutil.which("podman") is None or shutil.which("podman-compose") is None,
                       reason="podman and podman-compose are not installed (.ci/run installs "
                              "them)"),
]

COMMANDS = "tcp://127.0.0.1:5560"
SIM = "http://127.0.0.1:8765/api/v3"
# the stack's fixed ports on the host's network (docker/oms.toml, docker/sim.toml)
PORTS = [5560, 5561, 5562, 5563, 5564, 5570, 5571, 5572, 8765]
CLIENTS = ("alice", "bob", "carol")
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


class VenueAccount:
    """One client's account at the simulator, read with that account's own keys."""

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret.encode()

    def orders(self, symbol: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"symbol": symbol,
                                         "timestamp": int(time.time() * 1000)})
        sig = hmac.new(self.secret, params.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{SIM}/allOrders?{params}&signature={sig}",
                                     headers={"X-MBX-APIKEY": self.key})
        with urllib.request.urlopen(req, timeout=10) as r:
            return list(json.loads(r.read()))


def venue_order_id(client_order_id: str) -> int:
    """The engine order id in the gateway's client order id (``<prefix><order id>``), or -1."""
    tail = client_order_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def wait_engine(client: OmsClient, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            client.heartbeat()
            return
        except Exception:  # noqa: BLE001 - not up yet: ask again until the deadline
            if time.monotonic() > end:
                raise
            time.sleep(1.0)


def trade_each_client(client: OmsClient, side: Side) -> dict[str, int]:
    """One market order per client; the engine's order id of each."""
    placed = {}
    for who, (symbol, strategy, qty) in ORDERS.items():
        end = time.monotonic() + 90
        while True:  # until the gateway has published prices and the engine is trading
            r = client.submit(symbol, side, qty, account=who, strategy=strategy)
            if r.ok or time.monotonic() > end or r.code not in (
                    Reject.NO_REFERENCE_PRICE, Reject.STALE_REFERENCE_PRICE,
                    Reject.GLOBAL_HALT):
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
    # then the venue, once (the simulator limits request weight as Binance does)
    at_venue: dict[str, set[tuple[str, str]]] = {who: set() for who in placed}
    by_oid = {oid: who for who, oid in placed.items()}
    for owner in CLIENTS:
        for symbol in {symbol for symbol, _, _ in ORDERS.values()}:
            for o in venues[owner].orders(symbol):
                who = by_oid.get(venue_order_id(o["clientOrderId"]))
                if who is not None:
                    at_venue[who].add((o["status"], owner))
    assert at_venue == {who: {("FILLED", who)} for who in placed}, (placed, at_venue)


def project_volumes(names: list[str]) -> set[str]:
    """Every volume the containers mount: the named ones and the anonymous ones of the
    Dockerfile's VOLUMEs (``down -v`` removes only the named ones)."""
    out = subprocess.run(["podman", "inspect", "--format",
                          "{{range .Mounts}}{{.Name}} {{end}}", *names],
                         capture_output=True, text=True, timeout=60)
    return set(out.stdout.split())


def test_compose_stack_builds_trades_restarts_and_stops_under_podman(tmp_path: Path) -> None:
    busy = [p for p in PORTS if port_in_use(p)]
    assert not busy, f"the stack's ports are in use on 127.0.0.1: {busy}"
    src = copy_tree(tmp_path / "src")
    compose = ["bash", str(src / "docker" / "podman-compose.sh"), "-p", "omstest"]
    keys = {who: (f"sim-{who}-key", secrets.token_hex(16)) for who in CLIENTS}
    env = {**os.environ, **{f"OMS_SIM_{who.upper()}_SECRET": s for who, (_, s) in keys.items()}}
    venues = {who: VenueAccount(k, s) for who, (k, s) in keys.items()}
    timings: dict[str, float] = {}
    volumes: set[str] = set()
    names: list[str] = []
    t0 = time.monotonic()
    run(["bash", str(src / "docker" / "base-image.sh")], src, env, timeout=1200)
    timings["base images"] = time.monotonic() - t0
    cfg = src / "docker" / "oms.toml"
    assert load_config(cfg).clients.keys() == set(CLIENTS)
    try:
        t0 = time.monotonic()
        # the five services run one image: built once (podman-compose builds the services'
        # images in parallel, five times the same build on two cores), then up finds it
        run(compose + ["build", "engine"], src, env, timeout=1500)
        timings["image build"] = time.monotonic() - t0
        t0 = time.monotonic()
        run(compose + ["up", "-d"], src, env, timeout=300)
        timings["up"] = time.monotonic() - t0
        names = run(["podman", "ps", "--filter", "label=io.podman.compose.project=omstest",
                     "--format", "{{.Names}}"], src, env, timeout=60).split()
        assert len(names) == 5, names  # every service its own container
        volumes = project_volumes(names)
        with OmsClient(COMMANDS, config=cfg, timeout=5.0) as client:
            wait_engine(client)
            client.hello(CLIENTS, heartbeat_ms=0)
            first = trade_each_client(client, Side.BUY)
            assert_filled_at_own_accounts(client, venues, first)
        # `oms status` in a container of the stack reaches the engine by its service name
        status = json.loads(run(["podman", "exec", "omstest_engine_1", "python", "-m",
                                 "oms_core.cli", "status", "--config", "/etc/oms/oms.toml",
                                 "--json", "--pings", "3"], src, env, timeout=120))
        shard = status["shards"]["0"]
        assert shard["connected"] and set(shard["clients"]) == set(CLIENTS), shard
        # the engine's container restarted over the same journal volume: it recovers,
        # reconciles with the gateway and trades on (the simulated venue keeps running: a
        # fresh simulator would be a different venue from the one the journal remembers)
        t0 = time.monotonic()
        run(compose + ["restart", "engine"], src, env, timeout=300)
        timings["restart"] = time.monotonic() - t0
        with OmsClient(COMMANDS, config=cfg, timeout=5.0) as client:
            wait_engine(client)
            client.hello(CLIENTS, heartbeat_ms=0)
            for who, oid in first.items():
                known = {o.order_id: o.status
                         for o in client.orders(open_only=False, account=who).rows}
                assert known.get(oid) == OrderStatus.FILLED, (who, oid, known)
            # (breakout is single-entry: carol is in, so the second round sells)
            second = trade_each_client(client, Side.SELL)
            assert set(second.values()).isdisjoint(first.values())
            assert_filled_at_own_accounts(client, venues, second)
        run(compose + ["stop"], src, env, timeout=300)
        codes = {n: run(["podman", "inspect", "--format", "{{.State.ExitCode}}", n], src, env,
                        timeout=60).strip() for n in names}
        assert codes == {n: "0" for n in names}, codes
    finally:
        # each container's output, kept in the test's tmp dir for a look after a failure
        for name in names:
            with open(tmp_path / f"{name}.log", "wb") as log:
                subprocess.run(["podman", "logs", name], stdout=log, stderr=subprocess.STDOUT,
                               timeout=60)
        subprocess.run(compose + ["down", "-v", "-t", "30"], cwd=src, env=env,
                       capture_output=True, timeout=300)
        if volumes:
            subprocess.run(["podman", "volume", "rm", "-f", *volumes], capture_output=True,
                           timeout=120)
        subprocess.run(["podman", "rmi", "-f", "localhost/oms:latest"], capture_output=True,
                       timeout=120)
        subprocess.run(["podman", "image", "prune", "-f"], capture_output=True, timeout=120)
    left = run(["podman", "ps", "-a", "--filter", "label=io.podman.compose.project=omstest",
                "--format", "{{.Names}}"], src, env, timeout=60).split()
    kept = set(run(["podman", "volume", "ls", "--format", "{{.Name}}"], src, env,
                   timeout=60).split()) & (volumes | {"omstest_journal", "omstest_db"})
    pods = run(["podman", "pod", "ls", "--filter", "name=pod_omstest", "--format",
                "{{.Name}}"], src, env, timeout=60).split()
    assert (left, kept, pods) == ([], set(), [])
    print("podman timings (s):", {k: round(v, 1) for k, v in timings.items()})
