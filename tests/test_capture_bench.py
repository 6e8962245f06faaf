"""Capture benchmark figures (dahyf.capture.bench): lag and jitter against the raw landmarks, and
what they say when they cannot be measured."""
from __future__ import annotations

import json

import numpy as np

from dahyf.capture.bench import lag_frames, quality
from dahyf.capture.take import Take


def _moving_hand(n: int, delay: int = 0, seed: int = 0) -> np.ndarray:
    """(n, 21, 2) px: a hand moving on a smooth random path, ``delay`` frames late."""
    rng = np.random.default_rng(seed)
    t = np.arange(-delay, n - delay, dtype=np.float64)
    centre = np.stack([200 + 80 * np.sin(t / 5.0) + 30 * np.sin(t / 2.3), 150 + 60 * np.cos(t / 4.1)], -1)
    shape = rng.normal(0, 20, (21, 2))
    return centre[:, None] + shape[None]


def test_lag_is_found_where_it_can_be_measured():
    frames = np.arange(40)
    ref = _moving_hand(40)
    assert lag_frames(frames, ref, ref) == 0
    assert lag_frames(frames, _moving_hand(40, delay=2), ref) == 2


def test_lag_is_not_measured_without_consecutive_frames():
    # every other frame: no two consecutive frames, so no velocity; a still hand: no correlation.
    # Both used to report -5 (a 5-frame lag), the edge of the search window.
    ref = _moving_hand(40)
    assert lag_frames(np.arange(0, 80, 2), ref, ref) is None
    assert lag_frames(np.array([0, 1, 5, 6, 10, 11]), ref[:6], ref[:6]) is None     # pairs only
    still = np.repeat(ref[:1], 40, axis=0)
    assert lag_frames(np.arange(40), still, still) is None


def _take(frames: np.ndarray, points: np.ndarray) -> Take:
    n = len(frames)
    rows = {"track": np.zeros(n, np.int32), "frame": frames.astype(np.int64), "time_s": frames / 30.0,
            "pose": np.zeros((n, 16, 3)), "betas": np.zeros((n, 10)), "transl": np.tile([0, 0, 0.5], (n, 1)),
            "joints3d": np.zeros((n, 21, 3)), "joints2d_proj": points, "landmarks2d": points,
            "confidence": np.ones(n), "filled": np.zeros(n, bool)}
    return Take(30.0, (640, 480), 800.0, ("right",), rows, {})


def test_quality_says_not_measured_in_its_json():
    sparse = _take(np.arange(0, 80, 2), _moving_hand(40))
    q = quality(sparse, 40)
    track = q["tracks"][0]
    assert track["lag_frames"] is None and track["jitter_reduction"] is None
    assert q["max_abs_lag_frames"] is None and q["jitter_reduction"] is None
    text = json.dumps(q, allow_nan=False)            # plain JSON: null, never NaN
    assert '"max_abs_lag_frames": null' in text
    dense = quality(_take(np.arange(40), _moving_hand(40)), 40)
    assert dense["max_abs_lag_frames"] == 0 and dense["tracks"][0]["lag_frames"] == 0


def test_quality_measures_the_distance_in_mediapipes_keypoint_convention_when_given_the_map():
    """A capture whose keypoints are the model's (the map's pre-image of the landmarks) is off the
    landmarks by the convention's offset, and on them once mapped."""
    from dahyf.hand.tables import KEYPOINT_PARENTS

    M = np.eye(21)
    for tip in (4, 8, 12, 16, 20):               # MediaPipe's tips 20 % of the last bone short
        M[tip, tip], M[tip, KEYPOINT_PARENTS[tip]] = 0.8, 0.2
    model = _moving_hand(40)
    landmarks = M @ model
    take = _take(np.arange(40), model)
    take.rows["landmarks2d"] = landmarks
    q = quality(take, 40, landmark_map=M)
    assert q["median_dist_per_hand_size"] > 1e-3
    assert q["median_dist_mapped_per_hand_size"] < 1e-9
    assert q["tracks"][0]["median_dist_mapped_per_hand_size"] < 1e-9
    assert "median_dist_mapped_per_hand_size" not in quality(take, 40)


def test_the_shipped_engine_gives_its_landmark_map_to_the_bench():
    import dahyf
    from dahyf.capture.bench import landmark_map_of

    M = landmark_map_of(dahyf.load_engine())
    assert M.shape == (21, 21) and np.allclose(M.sum(1), 1.0, atol=1e-4)
