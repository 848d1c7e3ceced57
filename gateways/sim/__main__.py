"""``python -m gateways.sim --port 0 --config sim.toml [--ports-file ports.json]
[--state state.json]``.

Prints one JSON line with the bound URLs (and writes it to ``--ports-file``), then serves
until SIGINT/SIGTERM. With ``--state`` the venue starts from the state saved there (when the
file exists) and saves its state there when it stops (``gateways/sim/state.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from gateways.sim import state
from gateways.sim.config import SimConfig
from gateways.sim.server import SimServer


async def _serve(args: argparse.Namespace) -> None:
    cfg = SimConfig.load(args.config) if args.config else SimConfig.from_dict({})
    if args.seed is not None:
        cfg.seed = args.seed
    if args.no_market:
        cfg.market.enabled = False
    server = SimServer(cfg)
    if args.state:
        state.load(server, args.state)
    await server.start(args.host, args.port)
    info = {"host": server.host, "port": server.port, "rest": server.base_url + "/api/v3",
            "base_url": server.base_url, "ws": server.ws_url, "pid": _pid()}
    line = json.dumps(info)
    if args.ports_file:
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        import os

        os.replace(tmp, args.ports_file)
    print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # a supervisor starts its children with these blocked (held, not lost, until now)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    await stop.wait()
    await server.stop()
    if args.state:
        state.save(server, args.state)


def _pid() -> int:
    import os

    return os.getpid()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateways.sim", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--config", help="TOML file (see docs/simulator.md)")
    ap.add_argument("--ports-file", help="also write the bound URLs as JSON here")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--no-market", action="store_true", help="no synthetic participants")
    ap.add_argument("--state", help="start from the state saved in this file; save it there "
                                    "at stop")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
