"""`oms demo` runs with no configuration, ends by itself and leaves a non-empty DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_demo_runs_and_summarises_from_duckdb(tmp_path: Path) -> None:
    import duckdb

    r = subprocess.run([sys.executable, "-m", "oms_core.cli", "demo", "--seconds", "8",
                        "--dir", str(tmp_path)], capture_output=True, text=True, timeout=55,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "summary from" in r.stdout
    # fees are booked in the asset charged (base or quote): the column sums their value
    assert "mixed" not in r.stdout
    # and it ends with the report of this run, saying where it is
    html = tmp_path / "report-oms" / "report.html"
    assert "execution quality per exchange" in r.stdout
    assert f"report: {html}" in r.stdout and html.is_file()
    assert (tmp_path / "report-oms" / "trades.csv").is_file()
    con = duckdb.connect(str(tmp_path / "oms.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from orders").fetchone()[0] > 0
        assert con.execute("select count(*) from acks where cmd_type = 9").fetchone()[0] > 0
    finally:
        con.close()
