class Ledger:
    n_accounts: int
    n_instruments: int
    n_assets: int
    strategy_capacity: int
    strategy_pool_used: int
