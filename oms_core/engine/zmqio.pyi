from typing import Any

import zmq

from .loop import EngineLoop

def available() -> bool: ...
def client_pump(engine: Any, loop: EngineLoop, router: zmq.Socket, others: list[zmq.Socket],
                writer: zmq.Socket | None, gw_orders: dict[int, zmq.Socket],
                gw_pending: dict[int, Any], sessions: dict[bytes, Any],
                counters: dict[str, int], answers: list[bytes],
                registry: Any) -> ClientPump | None: ...
def bare_echo(sock: zmq.Socket, reply: bytes) -> int: ...

class ClientPump:
    max_batch: int
    n_messages: int
    n_wakeups: int
    n_session_lookups: int
    def serve(self, deadline_ns: int) -> int: ...
    def drain_clients(self) -> int: ...
