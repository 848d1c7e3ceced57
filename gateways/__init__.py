"""Exchange gateways: one process per exchange, asyncio on uvloop, websockets with picows."""

__all__: list[str] = []
