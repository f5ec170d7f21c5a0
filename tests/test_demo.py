"""The demo job runs end to end (quick settings) and writes a loadable preset."""

import os

import pytest

from keras_transfer import load_backbone
from keras_transfer.demo import few_shot_indices, run_demo


def test_few_shot_indices_balanced():
    import numpy as np

    y = np.repeat(np.arange(3), 5)
    idx = few_shot_indices(y, 2, seed=0)
    assert np.bincount(y[idx]).tolist() == [2, 2, 2]
    assert len(few_shot_indices(y, None, seed=0)) == 15


@pytest.mark.large
def test_demo_quick(tmp_path):
    out = str(tmp_path / "demo")
    result = run_demo(output_dir=out, quick=True, export=False, verbose=0)
    assert os.path.exists(result.model_path)
    assert 0.0 <= result.transfer_accuracy <= 1.0
    assert 0.0 <= result.scratch_accuracy <= 1.0
    bb = load_backbone(f"keras_hub:{result.preset_dir}")
    assert bb.modality == "image" and bb.preprocessor is not None
    assert not [p for p in os.listdir(out) if p.startswith(".preset-")]
