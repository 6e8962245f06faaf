"""The shipped default engine through its capture runtime (numpy, no torch: runs in every tier)."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf.assets import DEFAULT_CHECKPOINT
from dahyf.net.batch import HandBatch


def test_shipped_checkpoint_is_small_and_loads_into_the_estimator_interface(estimator):
    assert DEFAULT_CHECKPOINT.suffix == ".npz" and DEFAULT_CHECKPOINT.stat().st_size < 20 * 2 ** 20
    assert estimator.needs_crops is False
    assert estimator.hand_model_name == "open"
    assert estimator.device == "cpu" and estimator.backend == "numpy"


def test_bad_landmark_input_is_refused_with_a_clear_message(estimator):
    with pytest.raises(ValueError, match=r"\(B, 21, 2\)"):
        HandBatch.of(np.zeros((2, 20, 2)), np.ones(2, bool), [640, 480])
    with pytest.raises(TypeError, match="HandBatch"):
        estimator.predict(np.zeros((2, 21, 2)))


def test_empty_batch_gives_empty_outputs(estimator):
    # A batch of 0 hands (B = 0) must not trip over reshape(0, -1) in the pose-corrective feature.
    out = estimator.predict(HandBatch.of(np.zeros((0, 21, 2)), np.zeros(0, bool), [640.0, 480.0]))
    assert out["pose"].shape == (0, 16, 3) and out["joints3d"].shape == (0, 21, 3) and out["confidence"].shape == (0,)
