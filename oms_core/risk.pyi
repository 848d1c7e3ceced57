class RiskChecker:
    global_kill: int
    n_accounts: int
    n_strategies: int
    n_exchanges: int
