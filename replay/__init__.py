"""Replay and paper trading over historical bars, through the engine's one pipeline.

One job per module:

* :mod:`replay.data`: bars and signals from Parquet or CSV (exact decimals), synthetic bars;
* :mod:`replay.venue`: :class:`BarVenue`, the simulated exchange's matching engine quoting
  around each bar's path;
* :mod:`replay.driver`: :class:`Replayer`, the engine driven on the data's clock with the
  venue as its gateway; :func:`run_replay` writes the results to DuckDB;
* :mod:`replay.paper`: :func:`run_paper`, the engine process in real time over the same bars
  (the parity twin of a replay);
* :mod:`replay.cli`: ``oms replay`` / ``python -m replay``.

This package sits beside ``gateways`` and ``writer`` and uses both; ``oms_core`` never
imports it (the CLI loads it only for ``oms replay``). See docs/replay.md.
"""

from replay.driver import Replayer, ReplayResult, run_replay
from replay.paper import PaperResult, run_paper
from replay.venue import BarVenue

__all__ = ["BarVenue", "PaperResult", "ReplayResult", "Replayer", "run_paper", "run_replay"]
