"""Run one gateway process: ``python -m gateways --config FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import uvloop

from .config import GatewayConfig, load_config
from .engine_link import EngineLink


async def _main(cfg: GatewayConfig) -> None:
    link = EngineLink(cfg.engine, cfg.gateway_id)
    if cfg.kind == "binance":
        from .binance import BinanceGateway

        gw = BinanceGateway(cfg, link)
    elif cfg.kind == "ccxt":
        from .ccxt_gateway import CcxtGateway

        gw = CcxtGateway(cfg, link)  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown gateway kind {cfg.kind!r}")
    task = asyncio.get_running_loop().create_task(gw.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        link.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gateways", description=__doc__)
    ap.add_argument("--config", required=True, help="gateway config (.json or .toml)")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvloop.run(_main(load_config(args.config)))


if __name__ == "__main__":
    main()
