class OrderTable:
    capacity: int
    used: int
    slot_bits: int
    n_accounts: int
    live_count: int
    closed_count: int
    client_capacity: int
    client_count: int
    @property
    def slot_size(self) -> int: ...
    @property
    def bytes_per_order(self) -> int: ...
