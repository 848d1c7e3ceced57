"""Run one gateway process: ``python -m gateways --config FILE``.

SIGTERM / SIGINT stop it with status 0 at any moment, also while it imports and starts, and
when they come twice.
"""

from __future__ import annotations

import signal
from typing import Any

# noted before the imports behind it; the event loop's handlers take over once it runs
_STOP_SIGNALS: list[int] = []


def _note_stop(signum: int, frame: Any) -> None:
    _STOP_SIGNALS.append(signum)


signal.signal(signal.SIGTERM, _note_stop)
signal.signal(signal.SIGINT, _note_stop)
# a supervisor starts its children with these blocked (held, not lost, until now)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402

import uvloop  # noqa: E402

from .config import CCXT_EXTRA_HINT, GatewayConfig, load_config  # noqa: E402
from .engine_link import EngineLink  # noqa: E402


def _gateway_class(kind: str) -> type[Any]:
    """The gateway of ``kind``, imported only when configured (ccxt is an extra)."""
    if kind == "binance":
        from .binance import BinanceGateway

        return BinanceGateway
    if kind == "ccxt":
        try:
            from .ccxt_gateway import CcxtGateway
        except ModuleNotFoundError as e:
            if (e.name or "").partition(".")[0] != "ccxt":
                raise
            raise SystemExit(f"gateway kind \"ccxt\" {CCXT_EXTRA_HINT}") from None
        return CcxtGateway
    raise SystemExit(f"unknown gateway kind {kind!r}")


async def _main(cfg: GatewayConfig) -> None:
    gateway_class = _gateway_class(cfg.kind)
    link = EngineLink(cfg.engine, cfg.gateway_id)
    gw = gateway_class(cfg, link)
    task = asyncio.get_running_loop().create_task(gw.run())
    beat = asyncio.get_running_loop().create_task(link.repeat_status())
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    if _STOP_SIGNALS:
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        beat.cancel()
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
    # CPython puts the default action back for Python handlers while it shuts down: a late
    # signal would turn this exit into -15; an ignored one stays ignored
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
