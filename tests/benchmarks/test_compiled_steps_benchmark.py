"""`benchmarks/compiled_steps.py --quick` runs end to end (small CNN, 2 steps)."""

import json

import pytest


@pytest.mark.large
def test_quick_run_writes_every_variant(tmp_path, load_benchmark):
    module = load_benchmark("compiled_steps")
    out = tmp_path / "cs.json"
    assert module.main(["--quick", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["cases"]["small_cnn"]
    assert {"float32", "xla", "bf16", "bf16+xla"} <= set(rows)
    assert rows["float32"]["max_abs_pred_diff"] == 0.0
    assert rows["xla"]["max_abs_pred_diff"] < 1e-4  # XLA: float32 numerics
    assert all(row["output_dtype"] == "float32" for row in rows.values())
    assert rows["bf16"]["mixed_precision"] == "mixed_bfloat16"
    assert result["config"]["gpu_branch_run"] == result["config"]["gpu"]
