"""benchmarks/run.py: discovery, exit status and error reporting (no speed is measured).

The runner is copied into a scratch package beside small fake benchmark modules and run as a
real subprocess, so the project's own benchmarks are not run here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[3] / "benchmarks" / "run.py"

GOOD = '"""Always meets its target."""\n\ndef main(smoke=False):\n    return True\n'
MISS = '"""Misses its target on full runs."""\n\ndef main(smoke=False):\n    return smoke\n'
BROKEN_IMPORT = "import module_that_does_not_exist_anywhere\n"
RAISES = 'def main(smoke=False):\n    raise ValueError("harness broke")\n'
NO_MAIN = "X = 1\n"


def run(tmp_path: Path, modules: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    pkg = tmp_path / "benchmarks"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(RUNNER, pkg / "run.py")
    for name, source in modules.items():
        (pkg / f"{name}.py").write_text(source)
    return subprocess.run([sys.executable, "-m", "benchmarks.run", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_all_met_exits_zero(tmp_path: Path) -> None:
    proc = run(tmp_path, {"bench_good": GOOD})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bench_good" in proc.stdout
    assert "targets met" in proc.stdout
    assert "python" in proc.stdout  # the environment header


def test_missed_target_fails_full_run_only(tmp_path: Path) -> None:
    full = run(tmp_path, {"bench_good": GOOD, "bench_miss": MISS})
    assert full.returncode == 1
    assert "MISSED" in full.stdout
    smoke = run(tmp_path, {"bench_good": GOOD, "bench_miss": MISS}, "--smoke")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr


def test_import_error_and_exception_are_errors_and_the_rest_still_runs(tmp_path: Path) -> None:
    proc = run(tmp_path, {"bench_a_broken": BROKEN_IMPORT, "bench_b_raises": RAISES,
                          "bench_c_nomain": NO_MAIN, "bench_d_good": GOOD}, "--smoke")
    assert proc.returncode == 1
    out = proc.stdout
    assert "import failed" in out and "module_that_does_not_exist_anywhere" in out
    assert "harness broke" in out
    assert "no main(smoke) function" in out
    assert out.count("ERROR") == 3
    assert "bench_d_good" in out


def test_only_selects_and_rejects_unknown_names(tmp_path: Path) -> None:
    proc = run(tmp_path, {"bench_good": GOOD, "bench_a_broken": BROKEN_IMPORT}, "--only", "good")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bench_a_broken" not in proc.stdout
    unknown = run(tmp_path, {"bench_good": GOOD}, "--only", "nope")
    assert unknown.returncode == 2
    assert "unknown benchmark" in unknown.stdout
