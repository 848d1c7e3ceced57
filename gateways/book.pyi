from enum import IntEnum

class BookResult(IntEnum):
    BOOK_OK = 0
    BOOK_STALE_DIFF = 1
    BOOK_GAP = 2
    BOOK_NOT_SYNCED = 3
    BOOK_MALFORMED = 4
    BOOK_WRONG_SYMBOL = 5
    BOOK_TOO_BIG = 6

class L2Book:
    symbol: str
    capacity: int
    price_decimals: int
    qty_decimals: int
    max_msg_levels: int
    last_update_id: int
    synced: bool
    event_time_ms: int
    updated_ns: int
    n_applied: int
    n_dropped: int
    n_gaps: int
    n_malformed: int
    n_bids: int
    n_asks: int
    best_bid: tuple[int, int] | None
    best_ask: tuple[int, int] | None
    def __init__(
        self,
        symbol: str,
        price_decimals: int,
        qty_decimals: int,
        capacity: int = 1000,
        max_msg_levels: int = 5000,
    ) -> None: ...
    def apply_depth_update(self, msg: bytes, now_ns: int = 0) -> int: ...
    def apply_snapshot(self, msg: bytes, now_ns: int = 0) -> int: ...
    def apply_levels(
        self,
        first_id: int,
        last_id: int,
        bids: list[list[str]],
        asks: list[list[str]],
        event_time_ms: int = 0,
        now_ns: int = 0,
    ) -> int: ...
    def invalidate(self) -> None: ...
    def clear(self) -> None: ...
    def age_ns(self, now_ns: int = 0) -> int: ...
    def top(self) -> tuple[int, int, int, int]: ...
    def bids(self, n: int = -1) -> list[tuple[int, int]]: ...
    def asks(self, n: int = -1) -> list[tuple[int, int]]: ...

def parse_fixed(text: str | bytes, decimals: int) -> int: ...
def format_fixed(value: int, decimals: int) -> str: ...
