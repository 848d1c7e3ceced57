"""The compiled containers against Python's own: PairIndex vs dict, HeapSet vs sorted lists."""

from hypothesis import given, settings
from hypothesis import strategies as st

from oms_core.heaps import HeapSet
from oms_core.index import PairIndex

keys = st.tuples(st.integers(0, 40), st.integers(0, 3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "remove", "get"]), keys,
                          st.integers(0, 1000)), max_size=300))
def test_pair_index_behaves_like_a_dict(ops):
    index, model = PairIndex(64), {}
    for op, (k1, k2), value in ops:
        if op == "put":
            ok = index.py_put(k1, k2, value)
            if (k1, k2) in model or len(model) < 64:
                assert ok
                model[(k1, k2)] = value
            else:
                assert not ok  # full: refused, nothing overwritten
        elif op == "remove":
            assert index.py_remove(k1, k2) == ((k1, k2) in model)
            model.pop((k1, k2), None)
        assert index.py_get(k1, k2) == model.get((k1, k2))
        assert len(index) == len(model)
    for (k1, k2), value in model.items():
        assert index.py_get(k1, k2) == value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(-50, 50),
                          st.integers(0, 63)), max_size=300))
def test_heap_set_tops_are_minimums(ops):
    heaps, model = HeapSet(3, 64), {0: {}, 1: {}, 2: {}}
    where: dict[int, int] = {}
    for push, heap, key, slot in ops:
        if push and slot not in where:
            heaps.py_push(heap, key, slot, slot)
            model[heap][slot] = (key, slot)
            where[slot] = heap
        elif not push and slot in where:
            heaps.py_remove(where[slot], slot)
            del model[where.pop(slot)][slot]
        for h in range(3):
            expected = min(model[h].values(), default=None)
            top = heaps.py_top(h)
            assert (top[:2] if top else None) == expected
            assert heaps.py_size(h) == len(model[h])
