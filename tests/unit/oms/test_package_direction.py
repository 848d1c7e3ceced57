"""The package direction: ``oms_core`` (the engine and its core) never imports the packages
built on top of it (``replay``, ``writer``), so it can be read, built and shipped alone. The
CLI is the one exception: it is the entry point that dispatches ``oms replay`` / ``oms audit``
to them, lazily."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ABOVE_THE_CORE = ("replay", "writer", "analytics")
ENTRY_POINTS = {"oms_core/cli.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_the_core_package_does_not_import_replay_or_the_writer():
    bad = {}
    for path in sorted((ROOT / "oms_core").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ENTRY_POINTS:
            continue
        hits = sorted(m for m in _imports(path) if m.split(".")[0] in ABOVE_THE_CORE)
        if hits:
            bad[rel] = hits
    assert not bad, f"oms_core imports packages built on top of it: {bad}"


def test_replay_lives_beside_the_writer_and_the_gateways():
    assert (ROOT / "replay" / "__init__.py").is_file()
    assert not (ROOT / "oms_core" / "replay.py").exists()
    assert not (ROOT / "oms_core" / "replay_data.py").exists()


def test_the_writer_and_replay_do_not_import_analytics():
    """engine -> writer -> DuckDB -> analytics: analytics reads what the writer stored."""
    bad = {}
    for pkg in ("writer", "replay", "gateways", "bindings"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            hits = sorted(m for m in _imports(path) if m.split(".")[0] == "analytics")
            if hits:
                bad[path.relative_to(ROOT).as_posix()] = hits
    assert not bad, f"packages below analytics import it: {bad}"
