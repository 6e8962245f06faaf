"""The shipped sample clip: it decodes, its ground truth is the open hand model's, MediaPipe finds
the hand in it, the renderer still reproduces it, and the take-vs-GT evaluation is right."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf import sample_video as sv
from dahyf.hand.tables import FINGER_JOINTS

SAMPLE = sv.DEFAULT_OUT
VIDEO = SAMPLE / sv.VIDEO_NAME
GT_PATH = SAMPLE / sv.GT_NAME


@pytest.fixture(scope="module")
def gt():
    return sv.load_ground_truth(GT_PATH)


@pytest.fixture(scope="module")
def hand():
    import dahyf

    return dahyf.load_hand_model("open", "right")


def test_shipped_clip_decodes_to_gt_frame_count_size_and_fps(gt):
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    assert cap.isOpened(), f"cv2 cannot open {VIDEO}"
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(float(gt["fps"]), abs=1e-3)
    n, shape = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        shape = frame.shape
        n += 1
    cap.release()
    assert n == len(gt["pose"]) == len(gt["joints2d"])
    assert shape == (int(gt["image_size"][1]), int(gt["image_size"][0]), 3)
    assert 5.0 <= n / float(gt["fps"]) <= 10.0
    assert VIDEO.stat().st_size < 3_000_000


def test_gt_arrays_have_the_documented_shapes(gt):
    T = len(gt["pose"])
    assert gt["pose"].shape == (T, 16, 3) and gt["betas"].shape == (10,) and gt["transl"].shape == (T, 3)
    assert gt["joints3d"].shape == (T, 21, 3) and gt["joints2d"].shape == (T, 21, 2)
    assert tuple(gt["image_size"]) == (640, 480) and float(gt["fps"]) == 30.0 and str(gt["side"]) == "right"
    assert np.all(gt["joints3d"][..., 2] > 0.3), "hand must be in front of the camera"


def test_clip_was_rendered_from_the_current_open_hand_model(gt, hand):
    assert str(gt["model_digest"]) == sv.model_digest(hand), (
        "the open hand model changed since the sample clip was rendered: regenerate it with "
        "`python -m dahyf.sample_video --out engine/assets/sample` (about 15 min on 2 CPU cores)")


def test_gt_joints_are_the_open_hand_model_posed_by_the_gt(gt, hand):
    T = len(gt["pose"])
    out = hand(gt["pose"].astype(np.float64), np.tile(gt["betas"], (T, 1)).astype(np.float64),
               gt["transl"].astype(np.float64))
    np.testing.assert_allclose(out.keypoints, gt["joints3d"], atol=2e-5)
    np.testing.assert_allclose(sv.project(gt["joints3d"], float(gt["focal"])), gt["joints2d"], atol=1e-3)


def test_gt_keypoints_stay_inside_the_image(gt):
    W, H = gt["image_size"]
    j = gt["joints2d"]
    assert j[..., 0].min() > 10 and j[..., 0].max() < W - 10
    assert j[..., 1].min() > 10 and j[..., 1].max() < H - 10


@pytest.mark.needs_torch  # sample_video.make_ground_truth poses the hand with torch
def test_generator_reproduces_the_shipped_gt(gt, hand):
    new = sv.make_ground_truth(hand)
    for k in ("pose", "betas", "transl", "joints3d", "joints2d"):
        np.testing.assert_allclose(new[k], gt[k], atol=1e-5, err_msg=k)


def test_finger_flexion_stays_inside_natural_limits(gt):
    # Each finger joint's rotation angle: flexion <= 110 deg (PIP), thumb joints <= 80 deg.
    ang = np.degrees(np.linalg.norm(gt["pose"][:, 1:], axis=-1))
    assert ang.max() <= 110.0
    thumb = [j - 1 for j in FINGER_JOINTS["thumb"]]
    assert np.degrees(np.linalg.norm(gt["pose"][:, 1:][:, thumb], axis=-1)).max() <= 80.0


def test_the_script_shows_curls_fist_pointing_and_a_wave(gt):
    # Tip-to-wrist distance of each long finger drops by >= 35% at some point (each finger curls).
    j = gt["joints3d"]
    reach = np.linalg.norm(j[:, [8, 12, 16, 20]] - j[:, :1], axis=-1)
    assert np.all(reach.min(0) < 0.65 * reach.max(0))
    fist = np.all(reach < 0.7 * reach.max(0), axis=1)
    point = (reach[:, 0] > 0.9 * reach[:, 0].max()) & np.all(reach[:, 1:] < 0.7 * reach[:, 1:].max(0), axis=1)
    assert fist.any() and point.any()
    # The global orientation sweeps at least 40 degrees, the wrist crosses 150 px of the image.
    R = sv.rodrigues(gt["pose"][:, 0].astype(np.float64))
    assert sv.rotation_angle_deg(R[:, None], R[None]).max() > 40.0
    assert np.ptp(gt["joints2d"][:, 0, 0]) > 150.0


@pytest.mark.slow
def test_mediapipe_finds_the_hand_close_to_the_gt(gt):
    r = sv.mediapipe_check(VIDEO, gt, stride=2)
    assert r["detection_rate"] >= 0.9, r
    assert r["median_err_pct"] <= 6.0, r


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.needs_torch  # sample_video.make_ground_truth poses the hand with torch
def test_renderer_reproduces_the_shipped_first_frame(tmp_path, gt):
    import cv2

    summary = sv.generate(tmp_path / "out", tmp_path / "work", frames=[0], log=lambda *a: None)
    new = cv2.imread(f"{summary['frames_dir']}/00000.png")
    ok, shipped = cv2.VideoCapture(str(VIDEO)).read()
    assert ok and new.shape == shipped.shape
    # Render noise and H.264 leave ~0.04 % of pixels off by > 30 levels; the next frame of the
    # clip (the hand moved ~2 px) gives ~0.4 %.
    far = (np.abs(new.astype(np.int16) - shipped.astype(np.int16)).max(-1) > 30).mean()
    assert far < 0.002, f"re-rendered frame 0 differs from the shipped clip ({100 * far:.2f} % pixels): regenerate it"
    # ... and the hand is where the GT says it is (skin is redder than the blue-grey background;
    # fingertip keypoints lie on the silhouette, so only inner joints are checked).
    b, g, r = (new[..., c].astype(np.int16) for c in range(3))
    skin = (r - b) > 40
    for x, y in gt["joints2d"][0, [0, 6, 9, 10, 14]].astype(int):  # joints inside the skin
        assert skin[y - 1:y + 2, x - 1:x + 2].any(), (x, y)


def _rot(axis, deg):
    a = np.asarray(axis, float)
    return sv.rodrigues(np.radians(deg) * a / np.linalg.norm(a))


def test_evaluation_is_zero_on_the_gt_and_invariant_to_similarity(gt):
    take = {"pose": gt["pose"], "joints3d": gt["joints3d"], "frame": np.arange(len(gt["pose"]))}
    r = sv.evaluate_take_against_gt(take, gt)
    assert r["frames"] == len(gt["pose"])
    assert r["pa_mpjpe_mm"] < 1e-3 and r["orient_err_deg_median"] < 1e-2 and r["rr_mpjpe_mm"] < 1e-3
    # A scaled, rotated and moved skeleton has zero PA-MPJPE but a non-zero root-relative error.
    j = gt["joints3d"].astype(np.float64)
    moved = 1.1 * j @ _rot([0, 1, 0], 25).T + np.array([0.05, -0.02, 0.1])
    r = sv.evaluate_take_against_gt({"pose": gt["pose"], "joints3d": moved}, gt)
    assert r["pa_mpjpe_mm"] < 1e-3 and r["rr_mpjpe_mm"] > 5.0


def test_evaluation_measures_orientation_error_and_picks_the_right_hand_track(gt):
    T = len(gt["pose"])
    R = sv.rodrigues(gt["pose"][:, 0].astype(np.float64))
    pose = gt["pose"].astype(np.float64).copy()
    pose[:, 0] = sv.rotation_to_axis_angle(_rot([1, 2, 3], 10.0) @ R)
    rng = np.random.default_rng(0)
    noisy = gt["joints3d"] + rng.normal(0, 0.004, gt["joints3d"].shape)
    junk = rng.normal(0, 0.1, gt["joints3d"].shape)
    take = {"pose": np.concatenate([pose, np.zeros_like(pose)]),
            "joints3d": np.concatenate([noisy, junk]),
            "frame": np.concatenate([np.arange(T), np.arange(T)]),
            "track": np.repeat([0, 1], T), "handedness": np.array(["right", "left"])}
    r = sv.evaluate_take_against_gt(take, gt)
    assert r["frames"] == T
    assert r["orient_err_deg_median"] == pytest.approx(10.0, abs=1e-3)
    assert 3.0 < r["pa_mpjpe_mm"] < 7.0  # 4 mm per-axis noise, partly absorbed by the alignment


def test_pa_mpjpe_agrees_with_the_eval_metrics_module(gt):
    metrics = pytest.importorskip("dahyf.eval.metrics")
    rng = np.random.default_rng(2)
    pred = gt["joints3d"].astype(np.float64) + rng.normal(0, 0.005, gt["joints3d"].shape)
    mine = sv.evaluate_take_against_gt({"pose": gt["pose"], "joints3d": pred}, gt)["pa_mpjpe_mm"]
    theirs = 1000 * metrics.pa_mpjpe_batch(gt["joints3d"], pred).mean()
    assert mine == pytest.approx(theirs, rel=1e-6)
