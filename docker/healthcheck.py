"""Container health check (Dockerfile HEALTHCHECK): exit 0 when healthy, 1 otherwise.

Checks, in order:
1. the compiled core imports and a small OmsCore can be built (the wheel is sound);
2. the configuration named by ``OMS_CONFIG`` (when the file exists) loads;
3. when ``OMS_HEALTH_ENDPOINT`` is set, the ``oms run`` supervisor behind it answers a
   ``status`` request (ZeroMQ REQ) and every process it supervises is running (one that is
   waiting for its restart makes the container unhealthy until it is back);
4. when ``OMS_ENGINE_ENDPOINT`` is set, the engine answers a HEARTBEAT on its command
   endpoint (ZeroMQ DEALER, wire protocol);
each within ``OMS_HEALTH_TIMEOUT_MS`` (default 2000).
Prints one line saying what failed; never prints configuration values or secrets.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    try:
        from oms_core.core import OmsCore

        OmsCore(max_orders=16, max_accounts=1, max_instruments=1, max_assets=1,
                max_strategies=2, max_exchanges=1, trade_window=16,
                max_strategy_positions=16)
    except Exception as e:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"unhealthy: compiled core: {type(e).__name__}: {e}")
        return 1
    path = os.environ.get("OMS_CONFIG", "")
    if path and os.path.exists(path):
        from oms_core.config import ConfigError, load_config

        try:
            load_config(path)
        except ConfigError as e:
            print(f"unhealthy: {e}")
            return 1
    endpoint = os.environ.get("OMS_HEALTH_ENDPOINT", "")
    if endpoint:
        import zmq

        timeout = int(os.environ.get("OMS_HEALTH_TIMEOUT_MS", "2000"))
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(endpoint)
            sock.send(b"status")
            if not sock.poll(timeout):
                print(f"unhealthy: no answer from {endpoint} in {timeout} ms")
                return 1
            status = json.loads(sock.recv())
        finally:
            sock.close()
        down = [p["name"] for p in status.get("processes", []) if not p.get("alive")]
        if status.get("stopping") or down:
            print(f"unhealthy: supervisor {'stopping' if status.get('stopping') else 'up'}, "
                  f"processes not running: {', '.join(down) or 'none'}")
            return 1
    engine = os.environ.get("OMS_ENGINE_ENDPOINT", "")
    if engine:
        import time

        import zmq

        from bindings.wire import records as wire

        timeout = int(os.environ.get("OMS_HEALTH_TIMEOUT_MS", "2000"))
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(engine)
            sock.send(wire.encode("HEARTBEAT", 1, 0, time.time_ns(), last_seq=0,
                                  echo_ns=time.time_ns()))
            if not sock.poll(timeout):
                print(f"unhealthy: engine at {engine} did not answer in {timeout} ms")
                return 1
            sock.recv()
        finally:
            sock.close()
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
