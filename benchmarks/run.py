"""Run the benchmarks: ``python -m benchmarks.run [--smoke] [--only NAME ...]``.

Imports every ``benchmarks/bench_*.py`` module and calls its ``main(smoke: bool) -> bool``.
``--smoke`` is a tiny run that proves each harness works; it fails only on errors. A full run
also fails when a benchmark returns False (a target missed). A module that does not import,
has no ``main``, or raises is reported as an error. Exit status: 0 when everything ran (and, in
a full run, every target was met), 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

# numpy's OpenBLAS threads spin on a small shared machine; nothing here needs them. Set before
# any benchmark module imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

BENCH_DIR = Path(__file__).resolve().parent
VERSIONED = ("cython", "numpy", "pyzmq", "picows", "uvloop", "orjson", "msgspec", "rich",
             "hdrhistogram", "pytest-benchmark")


@dataclass
class Result:
    name: str
    status: str  # "met", "missed", "ran" (smoke), "error"
    seconds: float
    note: str = ""


def discover() -> list[str]:
    """Names (without .py) of benchmarks/bench_*.py, sorted."""
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def environment() -> list[str]:
    """What runs the benchmarks: machine, OS, Python and library versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return [
        f"machine : {platform.node()}  {_cpu_model()}  {os.cpu_count()} logical cpus  "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"os      : {platform.system()} {platform.release()} {platform.machine()}",
        f"python  : {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        "versions: " + ", ".join(f"{d} {_version(d)}" for d in VERSIONED),
    ]


def _summary(module: object) -> str:
    doc = (getattr(module, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def run_one(name: str, smoke: bool, console: Console) -> Result:
    console.print(Rule(f"[bold]{name}[/] ({'smoke' if smoke else 'full'})", align="left"))
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not fatal
        console.print(traceback.format_exc(), markup=False, highlight=False)
        return Result(name, "error", time.perf_counter() - t0,
                      f"import failed: {type(exc).__name__}: {exc}")
    main = getattr(module, "main", None)
    if not callable(main):
        return Result(name, "error", time.perf_counter() - t0, "no main(smoke) function")
    summary = _summary(module)
    if summary:
        console.print(summary, markup=False)
    console.print(f"on {platform.node()} ({_cpu_model()}, {os.cpu_count()} cpus), Python "
                  f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}", markup=False)
    gc_was = gc.isenabled()
    try:
        ok = main(smoke=smoke)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - one failure must not stop the rest
        console.print(traceback.format_exc(), markup=False, highlight=False)
        return Result(name, "error", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
    finally:
        if gc_was and not gc.isenabled():  # a benchmark must not leave the collector off
            gc.enable()
        sys.stdout.flush()
    seconds = time.perf_counter() - t0
    if not isinstance(ok, bool):
        return Result(name, "error", seconds, f"main returned {ok!r}, not a bool")
    if smoke:
        return Result(name, "ran", seconds,
                      "" if ok else "returned False (ignored: smoke checks no targets)")
    return Result(name, "met" if ok else "missed", seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny runs that only prove the harnesses work (no targets)")
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help="run only this benchmark (core or bench_core); repeatable")
    args = parser.parse_args(argv)
    console = Console(width=max(100, Console().width), highlight=False)

    names = discover()
    if args.only:
        wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in args.only]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            console.print(f"unknown benchmark(s): {', '.join(unknown)}; "
                          f"available: {', '.join(names)}")
            return 2
        names = [n for n in names if n in wanted]

    root = str(BENCH_DIR.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    console.print(Rule(f"[bold]benchmarks[/] ({'smoke' if args.smoke else 'full'} run): "
                       f"{', '.join(names) or 'none found'}", align="left"))
    for line in environment():
        console.print(line, markup=False)

    results = [run_one(name, args.smoke, console) for name in names]
    total = sum(r.seconds for r in results)

    table = Table(title=f"benchmark results ({'smoke' if args.smoke else 'full'} run, "
                  f"{total:.1f} s)", title_justify="left")
    for col in ("benchmark", "result", "seconds", "note"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    style = {"met": "green", "ran": "green", "missed": "red", "error": "bold red"}
    label = {"met": "targets met", "ran": "ran", "missed": "target MISSED", "error": "ERROR"}
    for r in results:
        table.add_row(r.name, f"[{style[r.status]}]{label[r.status]}[/]", f"{r.seconds:.1f}",
                      r.note)
    console.print(table)
    failed = [r for r in results if r.status in ("error", "missed")]
    if not results:
        console.print("no benchmarks found")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
