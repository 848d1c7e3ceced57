"""The wire spec, the generated C header / pxd, and their agreement with oms_core.enums."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bindings.wire import gen_header, spec
from oms_core import enums


def test_generated_files_are_committed_and_current() -> None:
    for path, text in gen_header.outputs().items():
        assert path.exists(), f"{path} missing: run python -m bindings.wire.gen_header"
        assert path.read_text() == text, f"{path} stale: run python -m bindings.wire.gen_header"
    assert gen_header.main(["--check"]) == 0


def test_header_layout() -> None:
    assert spec.HEADER_SIZE == 32
    names = [f.name for f in spec.HEADER_FIELDS]
    assert names == ["magic", "version", "flags", "msg_type", "length", "seq", "request_id",
                     "send_ns"]


@pytest.mark.parametrize("name", list(spec.RECORDS))
def test_record_layout_is_natural_and_gapless(name: str) -> None:
    r = spec.RECORDS[name]
    assert r.size % 8 == 0
    assert r.size == sum(f.size for f in r.fields) + spec.HEADER_SIZE
    off = spec.HEADER_SIZE
    for f in r.fields:
        assert f.offset == off, f"{name}.{f.name} leaves a hole"
        assert f.offset % f.align == 0, f"{name}.{f.name} misaligned"
        off += f.size
    assert off == r.size
    body = [f.name for f in r.body_fields]
    assert len(set(body)) == len(body)
    assert not set(body) & {f.name for f in spec.HEADER_FIELDS}


def test_type_ids_unique_and_ranges() -> None:
    ids = [r.type_id for r in spec.RECORDS.values()]
    assert len(set(ids)) == len(ids)
    for r in spec.RECORDS.values():
        if r.direction == "client->engine":
            assert 1 <= r.type_id < 64
        elif r.direction == "engine->client":
            assert 64 <= r.type_id < 128
        elif r.direction.startswith(("engine->gateway", "gateway->")):
            assert 128 <= r.type_id < 192


def test_header_enums_come_from_oms_core() -> None:
    text = gen_header.HEADER_PATH.read_text()
    for prefix, cls in [("OMS_SIDE", enums.Side), ("OMS_REJECT", enums.Reject),
                        ("OMS_STATUS", enums.OrderStatus), ("OMS_LIMIT", enums.Limit),
                        ("OMS_KILL", enums.KillMode), ("OMS_ALERT", enums.Alert),
                        ("OMS_ORDER_TYPE", enums.OrderType), ("OMS_TIF", enums.TimeInForce)]:
        for m in cls:
            assert re.search(rf"\b{prefix}_{m.name} = {int(m)},", text), (prefix, m)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_header_compiles_without_implicit_padding(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text('#include "oms_wire.h"\nint main(void) { oms_new_order_t o; '
                   "oms_wire_init(&o, OMS_MSG_NEW_ORDER, 1, 2, 3); "
                   "return o.hdr.length == sizeof o ? 0 : 1; }\n")
    exe = tmp_path / "t"
    subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Wpadded", "-Werror",
         f"-I{gen_header.HEADER_PATH.parent}", str(src), "-o", str(exe)],
        check=True, capture_output=True, timeout=60,
    )
    assert subprocess.run([str(exe)], timeout=10).returncode == 0
