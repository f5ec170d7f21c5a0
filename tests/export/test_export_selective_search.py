"""The selective int8 search on its own: fewest ops in float, within a size budget,
and the cache a later search without budget reuses (a fake debugger: no model)."""

from __future__ import annotations

import pytest

from keras_transfer.export import _selective


@pytest.fixture
def fake(monkeypatch):
    """10 ranked ops; k ops in float make a file of 100 + 10k bytes, which passes
    from k = 5 on. Counts conversions and verifications."""
    calls = {"convert": [], "verify": []}

    def convert(debugger, nodes, fully_quantize):
        calls["convert"].append(len(nodes))
        return b"x" * (100 + 10 * len(nodes))

    monkeypatch.setattr(_selective, "quantized_with_denylist", convert)
    ranked = [_selective.RankedOp(f"t{i}", "CONV_2D", 10.0 - i) for i in range(10)]

    def evaluate(content):
        k = (len(content) - 100) // 10
        calls["verify"].append(k)
        return k >= 5, 0.9 + 0.02 * k

    return _selective.Search(None, ranked, evaluate, False), calls


def test_search_finds_the_fewest_ops_within_budget(fake):
    search, calls = fake
    result = search.run(max_size_bytes=180)  # up to 8 ops fit
    assert result.best is not None and len(result.best.float_ops) == 5
    assert [o.tensor for o in result.best.float_ops] == ["t0", "t1", "t2", "t3", "t4"]
    assert result.stop_reason == "passed with 5 of 10 ops kept in float"
    assert not result.over_budget
    assert calls["verify"] == [1, 2, 4, 8, 6, 5]  # doubling, then bisection


def test_over_budget_stops_without_verifying_then_no_budget_reuses(fake):
    search, calls = fake
    result = search.run(max_size_bytes=135)  # 3 ops fit (130 bytes), 4 do not
    assert result.best is None and result.over_budget
    assert result.stop_reason == (
        "over size budget after 3 float ops: 4 in float make 140 bytes > 135; "
        "3 failed verification"
    )
    assert 4 not in calls["verify"]  # over budget: refused before verification
    over = [t for t in result.tried if t["over_budget"]]
    assert [t["float_ops"] for t in over] == [4]
    assert over[0]["top1_agreement"] is None and not over[0]["passed"]

    converted = list(calls["convert"])
    unbounded = search.run(None)
    assert len(unbounded.best.float_ops) == 5 and not unbounded.over_budget
    assert not set(calls["convert"][len(converted) :]) & set(converted)  # cached
    entry = [t for t in unbounded.tried if t["float_ops"] == 4]
    assert len(entry) == 1 and not entry[0]["over_budget"]  # now verified, once


def test_search_reports_when_nothing_passes(fake, monkeypatch):
    search, _ = fake
    search.evaluate = lambda content: (False, 0.5)
    result = search.run(None)
    assert result.best is None and not result.over_budget
    assert result.stop_reason == "no file passed with up to 9 of 10 ops kept in float"
