"""Every constant that crosses a language is the same number everywhere it is written.

The files are read as text, so no constant escapes the comparison:

* ``oms_core/enums.py`` -- the Python enums (the source of the values);
* ``oms_core/types.pxd`` -- the compiled core's ``cdef enum`` constants, and
  ``oms_core/includes/oms_math.h`` -- its bounds (``oms_core/limits.py``);
* ``bindings/wire/spec.py`` -- the wire's constants and enums, and what is generated from it:
  ``bindings/c/oms_wire.h`` (values) and ``bindings/wire/wire.pxd`` (names).

A constant in one file and missing from another where it is expected fails, and so does a
constant that no rule below claims (a new one must be placed in a rule, with its reason).
"""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

from bindings.wire import spec
from oms_core import enums, limits
from oms_core.core import c_constants

ROOT = Path(__file__).resolve().parents[3]
TYPES_PXD = ROOT / "oms_core" / "types.pxd"
MATH_H = ROOT / "oms_core" / "includes" / "oms_math.h"
HEADER = ROOT / "bindings" / "c" / "oms_wire.h"
WIRE_PXD = ROOT / "bindings" / "wire" / "wire.pxd"

# types.pxd: the prefix of each Python enum's constants
PXD_ENUMS: dict[str, type[IntEnum]] = {
    "SIDE": enums.Side, "TYPE": enums.OrderType, "TIF": enums.TimeInForce,
    "ST": enums.OrderStatus, "FLAG": enums.OrderFlag, "HOLD": enums.Hold,
    "CONT": enums.Contingency, "KILL": enums.KillMode, "EXIT": enums.ExitReason,
    "EV": enums.EventType, "ALERT": enums.Alert, "LIM": enums.Limit,
    "ANCHOR": enums.ProtectAnchor, "ON_REJECT": enums.ProtectOnReject,
    "PROTECT_ACTION": enums.ProtectAction, "R": enums.Reject,
}
# types.pxd constants that are no enum member, with the value they must have
PXD_VALUES: dict[str, int] = {
    "N_LIMITS": max(enums.Limit) + 1,  # the size of account_t.limits
    "ANY_ID": spec.ANY_ID,
}
# types.pxd constants of the core alone (no other file has them)
PXD_ONLY = {"NO_SLOT",  # an empty slot of the order table and the indexes
            "PROTECT_ON_FILL", "PROTECT_RETRIED"}  # order_t.protect bits
# Python enums the core does not name: it stores the value it is given
NOT_IN_CORE = {enums.Liquidity: "a fill's liquidity is passed through, never compared"}
# Python enums not on the wire
NOT_ON_WIRE = {enums.Contingency: "OCO / OTO are message types (NEW_OCO, NEW_BRACKET); no "
                                  "field carries a contingency"}
# oms_math.h: the core's bounds, the numbers of oms_core/limits.py
MATH_VALUES = {"OMS_MAX_RAW": limits.MAX_RAW, "OMS_MAX_NOTIONAL": limits.MAX_NOTIONAL,
               "OMS_NANOS_PER_TOKEN": limits.NANOS_PER_TOKEN}
# oms_wire.h: the #define of each integer constant of spec.py
HEADER_DEFINES = {"MAGIC": "OMS_WIRE_MAGIC", "VERSION": "OMS_WIRE_VERSION",
                  "HEADER_SIZE": "OMS_WIRE_HEADER_SIZE",
                  "MAX_FRAME_SIZE": "OMS_WIRE_MAX_FRAME_SIZE",
                  "MAX_RECORDS_PER_FRAME": "OMS_WIRE_MAX_RECORDS_PER_FRAME",
                  "ANY_ID": "OMS_ANY_ID", "GW_STATUS_INTERVAL_MS": "OMS_GW_STATUS_INTERVAL_MS",
                  "GW_SILENT_AFTER_MS": "OMS_GW_SILENT_AFTER_MS",
                  "ALERTS_KEPT": "OMS_ALERTS_KEPT", "AUDIT_SENDER_BYTES": "OMS_AUDIT_SENDER_BYTES"}


def _int(text: str) -> int:
    return int(text.rstrip("uUlL"), 0)


def _without_comments(text: str, marker: str) -> str:
    return "\n".join(line.split(marker, 1)[0] for line in text.splitlines())


def pxd_constants() -> dict[str, int]:
    """NAME = value of every ``cdef enum:`` block of types.pxd."""
    out: dict[str, int] = {}
    for block in re.findall(r"^cdef enum:\n((?:[ \t]+.*\n|\n)+)",
                            _without_comments(TYPES_PXD.read_text(), "#") + "\n", flags=re.M):
        for name, value in re.findall(r"^\s+([A-Za-z_]\w*)\s*=\s*(\S+)\s*$", block, flags=re.M):
            assert name not in out, f"types.pxd: {name} twice"
            out[name] = _int(value)
    return out


def header_enums() -> dict[str, dict[str, int]]:
    """enum name -> {CONSTANT: value} of oms_wire.h."""
    text = _without_comments(HEADER.read_text(), "/*")
    return {name: {k: _int(v) for k, v in re.findall(r"(\w+)\s*=\s*([^,\s]+),", body)}
            for name, body in re.findall(r"^enum (\w+) \{\n(.*?)^\};", text, flags=re.M | re.S)}


def header_defines(path: Path) -> dict[str, int]:
    return {k: _int(v) for k, v in re.findall(r"^#define (\w+) ([0-9][0-9A-Fa-fxXuUlL]*)\b",
                                              path.read_text(), flags=re.M)}


def _members(cls: type[IntEnum]) -> dict[str, int]:
    return {m.name: int(m) for m in cls}


def _core_enums() -> list[type[IntEnum]]:
    return [v for v in vars(enums).values()
            if isinstance(v, type) and issubclass(v, IntEnum) and v.__module__ == enums.__name__]


def test_every_types_pxd_constant_is_claimed_and_every_enum_complete() -> None:
    found: dict[str, dict[str, int]] = {p: {} for p in PXD_ENUMS}
    for name, value in pxd_constants().items():
        prefixes = [p for p in PXD_ENUMS if name.startswith(p + "_")]
        if name in PXD_VALUES:
            assert value == PXD_VALUES[name], name
        elif name in PXD_ONLY:
            pass
        else:
            assert prefixes, f"types.pxd: {name} belongs to no enum; place it in a rule here"
            prefix = max(prefixes, key=len)
            found[prefix][name[len(prefix) + 1:]] = value
    assert not (set(PXD_VALUES) | PXD_ONLY) - set(pxd_constants()), "a listed name left the pxd"
    for prefix, cls in PXD_ENUMS.items():
        # both ways: a member missing from the pxd fails, and so does a pxd name not a member
        assert found[prefix] == _members(cls), (prefix, cls.__name__)


def test_every_python_enum_is_in_the_core_and_on_the_wire_or_says_why_not() -> None:
    in_core = set(PXD_ENUMS.values()) | set(NOT_IN_CORE)
    on_wire = {cls for _, cls in spec.ENUMS} | set(NOT_ON_WIRE)
    for cls in _core_enums():
        assert cls in in_core, f"{cls.__name__}: not in types.pxd, nor in NOT_IN_CORE"
        assert cls in on_wire, f"{cls.__name__}: not in spec.ENUMS, nor in NOT_ON_WIRE"
    assert not set(NOT_ON_WIRE) & {cls for _, cls in spec.ENUMS}


def test_the_compiled_core_has_the_values_of_the_pxd() -> None:
    # what the compiled module holds (a stale build fails here, not only the text)
    pxd = pxd_constants()
    by_enum = {cls.__name__: prefix for prefix, cls in PXD_ENUMS.items()}
    for enum_name, values in c_constants().items():
        if enum_name == "sizes":
            continue
        for name, value in values.items():
            assert pxd[f"{by_enum[enum_name]}_{name}"] == value, (enum_name, name)


def test_the_header_has_every_enum_of_the_spec_with_its_values() -> None:
    header = header_enums()
    want = {prefix.lower(): {f"{prefix}_{k}": v for k, v in _members(cls).items()}
            for prefix, cls in spec.ENUMS}
    assert header == want  # every enum, every member, nothing more


def test_the_header_defines_every_constant_of_the_spec() -> None:
    ints = {k: v for k, v in vars(spec).items()
            if k.isupper() and isinstance(v, int) and not isinstance(v, bool | IntEnum)}
    assert set(ints) == set(HEADER_DEFINES), "a spec constant without its #define (or gone)"
    defines = header_defines(HEADER)
    assert {HEADER_DEFINES[k]: v for k, v in ints.items()} == defines
    assert defines["OMS_ANY_ID"] == pxd_constants()["ANY_ID"]


def test_the_generated_pxd_names_every_header_constant() -> None:
    text = _without_comments(WIRE_PXD.read_text(), "#")
    names = set(re.findall(r"^\s+(OMS_\w+)\s*$", text, flags=re.M))
    header = {k for values in header_enums().values() for k in values}
    assert header <= names, sorted(header - names)[:10]


def test_the_cores_bounds_are_the_numbers_of_limits_py() -> None:
    assert {k: v for k, v in header_defines(MATH_H).items() if k != "OMS_MATH_H"} == MATH_VALUES


def test_struct_sizes_are_what_the_docs_say() -> None:
    sizes = c_constants()["sizes"]
    assert sizes["order_t"] <= 256
    assert sizes["event_t"] == 48


def test_every_reject_has_a_reason() -> None:
    assert set(enums.REJECT_REASONS) == set(enums.Reject)
