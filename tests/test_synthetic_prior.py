"""The natural pose prior of the synthetic training hands: straight fingers are common and really
straight (the lifter must not learn a half curl as the answer for every ambiguous finger)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the synthetic hands are drawn with torch

from dahyf.hand.tables import FINGER_JOINTS
from dahyf.train import synthetic as S


def test_open_hands_are_common_and_their_fingers_straight(sampler):
    g = torch.Generator().manual_seed(0)
    curl = S.sample_finger_curl(g, 20000)
    assert curl.shape == (20000, 5) and float(curl.min()) >= 0 and float(curl.max()) <= 1
    open_share = float((curl[:, 1:] <= 0.05).all(1).float().mean())
    assert abs(open_share - S.POSE_MODES["open"] / sum(S.POSE_MODES.values())) < 0.02
    # every mode occurs: fists (all curled) and points (index straight, the others curled) too
    assert float((curl[:, 1:] > 0.7).all(1).float().mean()) > 0.03
    point = (curl[:, 1] < 0.1) & (curl[:, 2:] > 0.7).all(1)
    assert float(point.float().mean()) > 0.005
    # Flexion about each joint's own flexion axis, summed over a long finger's three joints: many
    # fingers within 8 deg of flat (18 %; the old prior, whose noise was clamped to flexion only,
    # had 5 %), and the 10th percentile near flat (old: 16 deg).
    pose = S.sample_poses(torch.Generator().manual_seed(1), 4000, sampler.axes).numpy()
    flex = np.degrees(np.einsum("njc,jc->nj", pose, sampler.axes.flex.numpy()))
    summed = np.stack([flex[:, list(FINGER_JOINTS[f])].sum(1) for f in ("index", "middle", "ring", "pinky")], 1)
    assert (np.abs(summed) < 8.0).mean() > 0.12
    assert np.percentile(summed, 10) < 6.0
