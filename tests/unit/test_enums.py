"""The C constants of oms_core/types.pxd equal the Python enums of oms_core/enums.py."""

from oms_core import enums
from oms_core.core import c_constants


def test_c_constants_match_python_enums():
    constants = c_constants()
    for enum_name, values in constants.items():
        if enum_name == "sizes":
            continue
        enum = getattr(enums, enum_name)
        for name, value in values.items():
            assert enum[name] == value, (enum_name, name)


def test_struct_sizes_are_what_the_docs_say():
    sizes = c_constants()["sizes"]
    assert sizes["order_t"] <= 256
    assert sizes["event_t"] == 48


def test_every_reject_has_a_reason():
    assert set(enums.REJECT_REASONS) == set(enums.Reject)
