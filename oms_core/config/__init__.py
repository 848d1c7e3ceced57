"""One TOML file describes the whole OMS: assets, instruments, exchanges, clients, strategies,
risk limits, order parameters and the endpoints and paths of the processes.

Cold code. Decimal strings become raw fixed-point integers here, with exact ``Decimal``
arithmetic; nothing past this module sees a decimal string. Bad configuration is refused by
:func:`load_config` with a :class:`ConfigError` that names the file, the dotted key and the
problem, e.g. ``oms.toml: clients.alice.limits.max_position: must be a positive decimal, got
'-3'``.

Secrets never appear in the file: an exchange account names the environment variable or the
file that holds each credential, and :class:`Credentials` reads them only when asked. They are
kept out of ``repr`` and out of every error message.

Ids are given by name: a name recorded in the identity table beside the journal
(``<engine.journal_dir>/identity.json``, :mod:`oms_core.identity`) keeps its recorded id
whatever the order of the blocks; a new name takes the next id never used, in file order
(assets, instruments, exchanges and accounts from 0, strategies from 1: 0 means "no
strategy" in the core). :class:`Ids` holds the name <-> id maps.

The package: :mod:`.model` (the dataclasses), :mod:`.parse` (TOML -> OmsConfig, every check
of a key), :mod:`.build` (credentials, extras, the core).
"""

from .build import build_core, check_credentials, check_extras
from .model import (
    SIM_PROFILES,
    AssetConfig,
    ClientConfig,
    ConfigError,
    Credentials,
    EngineConfig,
    ExchangeAccount,
    ExchangeConfig,
    Ids,
    InstrumentConfig,
    OmsConfig,
    OrderParams,
    ReplayConfig,
    SecurityConfig,
    SimProfile,
    StrategyConfig,
    UserConfig,
    WriterConfig,
    to_raw,
)
from .parse import LIMIT_KEYS, SECURITY_MODES, USER_ROLES, load_config, parse_config

__all__ = [
    "AssetConfig", "ClientConfig", "ConfigError", "Credentials", "EngineConfig",
    "ExchangeAccount", "ExchangeConfig", "Ids", "InstrumentConfig", "LIMIT_KEYS", "OmsConfig",
    "OrderParams", "ReplayConfig", "SECURITY_MODES", "SIM_PROFILES", "SecurityConfig",
    "SimProfile", "StrategyConfig", "USER_ROLES", "UserConfig", "WriterConfig", "build_core",
    "check_credentials", "check_extras",
    "load_config", "parse_config", "to_raw",
]
