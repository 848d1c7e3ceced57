"""Stable ids: the name -> id table recorded beside the journal.

Cold code. The journal books positions, orders and P&L under ids (account, strategy,
instrument, asset, exchange), never names, so an id must keep meaning the same name for the
life of the journal. The first engine start on a journal directory writes the table it used
to ``<engine.journal_dir>/identity.json`` (temp file, fsync, rename); every later
:func:`oms_core.config.load_config` of that configuration, in any process, gives each
recorded name its recorded id, whatever the order of the TOML blocks, and a new name the
next id never used. A recorded instrument or asset whose precision changed is refused,
naming it (its raw integers in the journal would mean other amounts); a recorded name that
is gone from the configuration keeps its id reserved, and an engine refuses to start on a
non-empty journal without it (its booked state would have no owner).

File format (JSON)::

    {"version": 1,
     "assets":      {"USDT": {"id": 0, "precision": 8}, ...},
     "exchanges":   {"sim": {"id": 0}},
     "instruments": {"BTCUSDT": {"id": 0, "price_precision": 2, "qty_precision": 4}, ...},
     "strategies":  {"trend": {"id": 1}, ...},
     "accounts":    {"alice": {"id": 0}, ...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["IDENTITY_FILE", "KINDS", "IdAllocator", "IdentityError", "identity_path",
           "read_identity", "record_identity", "write_identity"]

IDENTITY_FILE = "identity.json"
VERSION = 1
# kind -> (the first id, what a name of that kind is called in messages)
KINDS: dict[str, tuple[int, str]] = {
    "assets": (0, "asset"), "exchanges": (0, "exchange"), "instruments": (0, "instrument"),
    "strategies": (1, "strategy"), "accounts": (0, "client"),
}


class IdentityError(ValueError):
    """The configuration disagrees with the identity table recorded beside the journal."""


def identity_path(journal_dir: str | os.PathLike[str]) -> Path:
    return Path(journal_dir) / IDENTITY_FILE


def read_identity(path: str | os.PathLike[str]) -> dict[str, dict[str, dict[str, int]]]:
    """Return the recorded table (empty kinds when the file does not exist)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        return {k: {} for k in KINDS}
    except (OSError, ValueError) as e:
        raise IdentityError(f"{p}: unreadable identity table: {e}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise IdentityError(f"{p}: not an identity table of version {VERSION}")
    return {k: {str(n): {str(a): int(v) for a, v in row.items()}
                for n, row in dict(data.get(k, {})).items()} for k in KINDS}


def write_identity(path: str | os.PathLike[str],
                   table: dict[str, dict[str, dict[str, int]]]) -> bool:
    """Write ``table`` atomically unless the file already holds it; True when written."""
    p = Path(path)
    body = json.dumps({"version": VERSION, **{k: table.get(k, {}) for k in KINDS}},
                      indent=1, sort_keys=True) + "\n"
    try:
        if p.read_text() == body:
            return False
    except OSError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    fd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


@dataclass
class IdAllocator:
    """Ids by name: the recorded one, else the next one above every id ever recorded."""

    recorded: dict[str, dict[str, dict[str, int]]] = field(
        default_factory=lambda: {k: {} for k in KINDS})
    source: str = ""  # the table's path, for messages
    assigned: dict[str, dict[str, dict[str, int]]] = field(
        default_factory=lambda: {k: {} for k in KINDS})

    def id(self, kind: str, name: str, **attrs: int) -> int:
        """The id of ``name``; ``attrs`` (precisions) must equal the recorded ones."""
        row = self.recorded[kind].get(name)
        if row is not None:
            for attr, value in attrs.items():
                if attr in row and row[attr] != value:
                    raise IdentityError(
                        f"{KINDS[kind][1]} {name}: {attr.replace('_', ' ')} {value} differs "
                        f"from {row[attr]} recorded in {self.source} (the journal's amounts "
                        f"are at the recorded precision); keep {row[attr]} or start a new "
                        "journal directory")
            new = row["id"]
        else:
            used = [r["id"] for r in self.recorded[kind].values()]
            used += [r["id"] for r in self.assigned[kind].values()]
            new = max(used, default=KINDS[kind][0] - 1) + 1
        self.assigned[kind][name] = {"id": new, **attrs}
        return new

    def removed(self) -> dict[str, list[str]]:
        """Recorded names the configuration no longer has, by kind."""
        return {k: sorted(set(rows) - set(self.assigned[k]))
                for k, rows in self.recorded.items() if set(rows) - set(self.assigned[k])}

    def added(self) -> dict[str, list[str]]:
        """Names of the configuration the table did not record, by kind."""
        return {k: sorted(set(rows) - set(self.recorded[k]))
                for k, rows in self.assigned.items() if set(rows) - set(self.recorded[k])}

    def table(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What to record: every assigned name, and the removed ones (their ids stay taken)."""
        return {k: {**self.recorded[k], **self.assigned[k]} for k in KINDS}


def record_identity(oms: Any, journal_empty: bool) -> Path | None:
    """At engine start: refuse a non-empty journal whose recorded names the configuration
    lost, else record the table the configuration was loaded with; return its path."""
    if not oms.engine.journal_dir:
        return None
    alloc: IdAllocator = oms.identity
    removed = alloc.removed()
    if removed and not journal_empty:
        def names(by_kind: dict[str, list[str]]) -> str:
            return "; ".join(f"{KINDS[k][1]} {', '.join(v)}" for k, v in by_kind.items())

        added = alloc.added()
        raise IdentityError(
            f"{oms.file}: the journal has state booked under names that are no longer in the "
            f"configuration ({names(removed)}; recorded in {alloc.source})"
            + (f", and the configuration has new names ({names(added)}): a rename gives a "
               "new identity" if added else "")
            + ": put them back (their ids are kept) or start with a new journal directory")
    path = identity_path(oms.engine.journal_dir)
    write_identity(path, alloc.table())
    return path
