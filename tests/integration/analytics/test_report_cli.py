"""``oms report`` as a user runs it (a subprocess) on databases the real engine and writer
produced: the tables in the terminal, the files, and one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from analytics_fixtures import SmallReplay
from replay_fixtures import MIN, SMALL_TOML, T0, TINY_TOML, bars_table, small_market, write_csv

from oms_core.cli import main
from oms_core.config import parse_config
from replay import run_replay

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]
TABLES = ("trades", "equity", "risk", "monthly", "execution_by_exchange",
          "execution_by_instrument", "rejects")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("data:", "#")):
                self.external.append(f"<{tag} {name}={value}>")


def external_resources(text: str) -> list[str]:
    """Every tag of the page that loads something from elsewhere."""
    p = _Tags()
    p.feed(text)
    return p.external


def oms(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "oms_core.cli", *args], capture_output=True,
                          text=True, env=env, timeout=90, cwd=ROOT)


def test_report_prints_the_tables_and_writes_every_file(small_replay: SmallReplay,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = oms("report", "--db", small_replay.db, "--config", small_replay.config_path,
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    for title in ("round trips per client and strategy", "equity per client and strategy",
                  "value at risk and expected shortfall", "execution quality per exchange",
                  "execution quality per instrument", "rejects by reason"):
        assert title in r.stdout
    assert "sharpe" in r.stdout and "hist_var_99" in r.stdout and "SINGLE_ENTRY" in r.stdout
    assert "alice / trend" in r.stdout and "BTCUSDT" in r.stdout
    assert "not recorded yet" in r.stdout
    html = out / "report.html"
    assert f"report: {html}" in r.stdout
    assert external_resources(html.read_text()) == []  # plotly.js is embedded, no CDN
    for name in TABLES:
        for ext in ("csv", "parquet", "json"):
            assert (out / f"{name}.{ext}").stat().st_size > 0
        assert f"{out / name}.{{csv,parquet,json}}" in r.stdout
    # the files hold what the database holds: the trades add up to trades_closed, exactly
    con = duckdb.connect(small_replay.db, read_only=True)
    n, raw = con.execute("SELECT count(*), sum(realized_pnl) FROM trades_closed").fetchone()
    con.close()
    trades = json.loads((out / "trades.json").read_text())["rows"]
    assert sum(t["trades"] for t in trades) == n
    assert sum(Decimal(t["total_pnl"]) for t in trades) == Decimal(int(raw)).scaleb(-8)
    assert pq.read_table(out / "trades.parquet").num_rows == len(trades)


def test_a_filtered_report_by_names(small_replay: SmallReplay, tmp_path: Path) -> None:
    assert main(["report", "--db", small_replay.db, "--config", small_replay.config_path,
                 "--client", "bob", "--exchange", "sim", "--from", "2024-01-01",
                 "--to", "2024-01-03T00:00:00", "--out", str(tmp_path)]) == 0
    trades = json.loads((tmp_path / "trades.json").read_text())["rows"]
    assert {t["client"] for t in trades} == {"bob"}
    # ids work as names do
    assert main(["report", "--db", small_replay.db, "--config", small_replay.config_path,
                 "--strategy", "1", "--instrument", "BTCUSDT", "--out", str(tmp_path)]) == 0
    trades = json.loads((tmp_path / "trades.json").read_text())["rows"]
    assert trades and {t["strategy"] for t in trades} == {"trend"}
    per_inst = json.loads((tmp_path / "execution_by_instrument.json").read_text())["rows"]
    assert [r["instrument"] for r in per_inst] == ["BTCUSDT"]


def test_the_default_folder_is_beside_the_database(small_replay: SmallReplay,
                                                   tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(Path(small_replay.db).read_bytes())
    assert main(["report", "--db", str(db), "--config", small_replay.config_path]) == 0
    assert (tmp_path / "report-copy" / "report.html").is_file()


@pytest.mark.parametrize(("extra", "message"), [
    (["--client", "nobody"], "unknown client 'nobody'; known: alice, bob, carol"),
    (["--strategy", "x"], "unknown strategy 'x'"),
    (["--exchange", "nyse"], "unknown exchange 'nyse'"),
    (["--instrument", "DOGE"], "unknown instrument 'DOGE'"),
    (["--from", "yesterday"], "--from 'yesterday' is not an ISO date or time"),
    (["--from", "2024-01-02", "--to", "2024-01-01"], "--from must be before --to"),
    (["--periods-per-year", "0"], "--periods-per-year must be positive"),
])
def test_bad_selections_exit_2_with_one_line(small_replay: SmallReplay, extra: list[str],
                                             message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", "--db", small_replay.db, "--config", small_replay.config_path, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_bad_files_exit_2_with_one_line(small_replay: SmallReplay, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database\n" * 100)
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    cases = [
        (["--db", str(tmp_path / "none.duckdb"), "--config", small_replay.config_path],
         "no database file"),
        (["--db", str(junk), "--config", small_replay.config_path], "is not a DuckDB database"),
        (["--db", str(empty), "--config", small_replay.config_path],
         "is not an OMS database"),
        (["--db", small_replay.db, "--config", str(tmp_path / "none.toml")],
         "configuration refused"),
        (["--db", small_replay.db], "--config is needed"),
    ]
    for args, message in cases:
        rc = main(["report", *args])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "none.duckdb").exists()


def test_a_database_without_trades_still_reports(tmp_path: Path) -> None:
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text(TINY_TOML)
    bars = bars_table([(T0 + k * MIN, 0, 10_000, 10_010, 9_990, 10_000, 500)
                       for k in range(3)])
    db = tmp_path / "quiet.duckdb"
    run_replay(parse_config(TINY_TOML, "tiny.toml"), bars, None, out=str(db))
    r = oms("report", "--db", str(db), "--config", str(cfg_path), "--out", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    assert "no closed round trips in this selection" in r.stdout
    assert "round trips per client and strategy: none" in r.stdout
    html = (tmp_path / "r" / "report.html").read_text()
    assert "no closed round trips in this selection" in html
    assert json.loads((tmp_path / "r" / "trades.json").read_text())["rows"] == []
    assert pq.read_table(tmp_path / "r" / "trades.parquet").num_rows == 0


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # a writer: read-write, held open
con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("holding", flush=True)
time.sleep(60)
"""


def test_a_database_held_by_a_running_writer_is_refused_with_the_way_out(
        small_replay: SmallReplay, tmp_path: Path) -> None:
    """DuckDB lets no second process open a file a writer holds, not even read-only: the
    report says so and how to get one instead of a lock traceback."""
    db = tmp_path / "live.duckdb"
    db.write_bytes(Path(small_replay.db).read_bytes())
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        r = oms("report", "--db", str(db), "--config", small_replay.config_path)
    finally:
        holder.kill()
        holder.wait(10)
    assert r.returncode == 2
    assert "is held by a running writer" in r.stderr and "stop the OMS" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # once the writer is gone the same file reports
    deadline = time.monotonic() + 10
    while True:
        r = oms("report", "--db", str(db), "--config", small_replay.config_path)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
    assert r.returncode == 0, r.stderr


def test_oms_replay_ends_with_the_report_of_its_run(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = tmp_path / "small.toml"
    cfg_path.write_text(SMALL_TOML)
    bars, sigs = small_market(hours=4)
    pq.write_table(bars, tmp_path / "bars.parquet")
    write_csv(tmp_path / "signals.csv", sigs)
    db = tmp_path / "run.duckdb"
    assert main(["replay", "--config", str(cfg_path), "--bars", str(tmp_path / "bars.parquet"),
                 "--signals", str(tmp_path / "signals.csv"), "--out", str(db), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "positions at the end" in out.err  # the replay's own summary is still there
    assert "round trips per client and strategy" in out.out
    html = tmp_path / "report-run" / "report.html"
    assert f"report: {html}" in out.out and html.is_file()
    assert (tmp_path / "report-run" / "trades.parquet").is_file()
