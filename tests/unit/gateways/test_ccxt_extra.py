"""ccxt is an extra (``pip install 'oms[ccxt]'``): only the ccxt gateway imports it, and a
configuration with a ccxt venue where it is missing is refused in one line, not a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# ``import ccxt`` raises ModuleNotFoundError where sys.modules holds None for it
WITHOUT_CCXT = "import sys; sys.modules['ccxt'] = None\n"
HINT = "pip install 'oms[ccxt]'"


def _python(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_CCXT + code, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_every_module_but_the_ccxt_gateway_imports_without_ccxt() -> None:
    code = """
import importlib, pkgutil
skip = {"gateways.ccxt_gateway"}
names = []
for pkg in ("oms_core", "gateways", "bindings", "writer", "benchmarks"):
    mod = importlib.import_module(pkg)
    names.append(pkg)
    for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
        if info.name in skip or info.name.rpartition(".")[2] == "__main__":
            continue
        importlib.import_module(info.name)
        names.append(info.name)
print(len(names))
"""
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) > 40  # the walk found the packages' modules


def test_the_entry_points_start_without_ccxt() -> None:
    for module in ("oms_core.cli", "oms_core.engine", "gateways", "gateways.sim", "writer"):
        r = _python("import runpy; runpy.run_module(sys.argv.pop(1), run_name='__main__')",
                    module, "--help")
        assert r.returncode == 0, (module, r.stderr)
        assert "ccxt" not in r.stderr, module


def test_a_ccxt_venue_without_the_extra_is_refused_by_oms_run(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    desk = tmp_path / "examples" / "desk.toml"
    shutil.copy(ROOT / "examples" / "desk.toml", desk)
    r = _python("from oms_core.cli import main; sys.exit(main(sys.argv[1:]))",
                "run", "--config", str(desk), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "exchanges.spot_b.kind" in lines[0] and HINT in lines[0]
    assert not (tmp_path / "var").exists()  # refused before anything was written


def test_a_ccxt_gateway_without_the_extra_exits_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('kind = "ccxt"\nexchange = "binance"\n')
    r = _python("import runpy; runpy.run_module('gateways', run_name='__main__')",
                "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f'gateway kind "ccxt" needs ccxt, which is not '
                                             f"installed: {HINT}"]
