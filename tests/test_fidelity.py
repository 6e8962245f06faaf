"""The fidelity benchmark's measuring stick: the metric definitions, the rendered clips' ground
truth, and the scoring of a capture against it (a perfect take scores perfectly; each kind of
defect — ghost row, wrong side, flip, bent straight finger, wrong depth, lost frame — is counted)."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf.capture.take import Take
from dahyf.eval import bench_fidelity as B
from dahyf.eval import fidelity as F
from dahyf.sample_video import clips as C
from dahyf.sample_video import occlusion as O
from dahyf.sample_video.script import rodrigues, rotation_to_axis_angle


@pytest.fixture(scope="module")
def models():
    from dahyf.hand.model import load_hand_model

    return {s: load_hand_model("open", s) for s in ("right", "left")}


@pytest.fixture(scope="module")
def two_hands(models):
    gt, _ = C.make_clip(C.clip_by_name("two_hands"), models)
    return gt


def _take_from_gt(gt, hands=None, frames=None) -> Take:
    """A take whose rows are exactly the ground truth (track h = GT hand h)."""
    H, T = gt["visible"].shape
    hands = range(H) if hands is None else hands
    frames = range(T) if frames is None else frames
    rows = {"track": [], "frame": [], "pose": [], "joints3d": [], "landmarks2d": []}
    for h in hands:
        for f in frames:
            rows["track"].append(h)
            rows["frame"].append(f)
            rows["pose"].append(gt["pose"][h, f])
            rows["joints3d"].append(gt["joints3d"][h, f])
            rows["landmarks2d"].append(gt["joints2d"][h, f])
    n = len(rows["frame"])
    full = {k: np.asarray(v) for k, v in rows.items()}
    full.update(time_s=full["frame"] / 30.0, betas=np.zeros((n, 10)), transl=np.zeros((n, 3)),
                joints2d_proj=full["landmarks2d"], confidence=np.ones(n), filled=np.zeros(n, bool))
    return Take(30.0, tuple(int(x) for x in gt["image_size"]), float(gt["focal"]),
                tuple(str(s) for s in gt["sides"]), full, {})


def _with_rows(take: Take, extra: dict, handedness=None) -> Take:
    rows = {k: np.concatenate([v, np.asarray(extra[k], dtype=v.dtype)]) for k, v in take.rows.items()}
    return Take(take.fps, take.image_size, take.focal, handedness or take.handedness, rows, {})


def test_summed_flexion_is_zero_for_the_flat_hand_and_adds_the_joint_angles():
    pose = np.zeros((2, 16, 3))
    assert np.all(F.summed_flexion(pose) == 0)
    pose[1, 1] = [0.0, 0.0, np.radians(30)]   # index1 30 deg, index2 20 deg
    pose[1, 2] = [np.radians(20), 0.0, 0.0]
    pose[1, 13] = [0.0, np.radians(-10), 0.0]  # thumb1
    flex = F.summed_flexion(pose)[1]
    assert flex[F.FINGERS.index("index")] == pytest.approx(50.0)
    assert flex[F.FINGERS.index("thumb")] == pytest.approx(10.0)
    assert flex[F.FINGERS.index("pinky")] == 0.0


def test_straight_by_projection_marks_frames_near_the_longest_projection():
    lm = np.zeros((3, 21, 2))
    tips = [4, 8, 12, 16, 20]
    lm[:, tips, 1] = -100.0                    # every finger 100 px long ...
    lm[1, 8, 1] = -50.0                         # ... but the index finger curled in frame 1
    lm[2, 8, 1] = -92.0                         # and nearly straight in frame 2
    s = F.straight_by_projection(lm)
    assert s.shape == (3, 5) and s.all(axis=0)[[0, 2, 3, 4]].all()
    assert s[:, 1].tolist() == [True, False, True]


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_left_hand_of_a_clip_is_the_mirror_image_of_a_scripted_right_hand(models, two_hands):
    # Re-script the left hand as a right hand at the mirrored place: its keypoints are the mirror image.
    clip = C.clip_by_name("two_hands")
    left = clip.hands[1]
    right_twin = C.HandTrack("right", left.keys, left.wrist * np.array([-1.0, 1.0, 1.0]), left.lean, left.tilt_deg)
    twin = C.Clip("twin", clip.frames, [right_twin], clip.focal, clip.image_size)
    gt_twin, _ = C.make_clip(twin, models)
    np.testing.assert_allclose(two_hands["joints3d"][1], gt_twin["joints3d"][0] * np.array([-1.0, 1.0, 1.0]),
                               atol=2e-5)
    assert [str(s) for s in two_hands["sides"]] == ["right", "left"]
    # The person's right hand is on the image's left (a frontal view), and both are visible.
    assert two_hands["joints2d"][0, :, 0, 0].mean() < two_hands["joints2d"][1, :, 0, 0].mean()
    assert two_hands["visible"].all()


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_edge_cut_clip_leaves_the_frame_in_part_and_blur_clip_has_subframes(models):
    gt, _ = C.make_clip(C.clip_by_name("edge_cut"), models)
    assert 0.6 < gt["visible"].mean() < 1.0
    W = gt["image_size"][0]
    assert (gt["joints2d"][..., 0] < 0).any() and (gt["joints2d"][..., 0] < W).all()
    _, meshes = C.make_clip(C.clip_by_name("fast_blur"), models)
    v = meshes[0][0]                            # (T, S, V, 3): sub-frame samples differ (motion)
    assert v.shape[1] == 3 and np.abs(v[:, 0] - v[:, -1]).max() > 0.005


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_a_perfect_take_scores_perfectly(two_hands):
    r = B.score_clip(_take_from_gt(two_hands), two_hands, detections=[])
    assert r["coverage"] == 1.0 and r["coverage_mediapipe_alone"] == 0.0
    assert r["ghost_rows"] == r["wrong_side_rows"] == r["unmatched_rows"] == r["flips"] == 0
    assert r["pa_mpjpe_mm"] < 1e-3 and r["rr_mpjpe_mm"] < 1e-3 and r["depth_err_median"] < 1e-6
    assert r["straight_flexion_err_deg_median"] == 0.0 and r["straight_fingers"] > 0
    assert r["orient_err_deg_median"] < 0.01


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_ghost_wrong_side_flip_depth_and_lost_frames_are_counted(two_hands):
    T = two_hands["visible"].shape[1]
    base = _take_from_gt(two_hands, frames=range(T - 4))                  # the last 4 frames lost
    r = B.score_clip(base, two_hands, detections=[])
    assert r["coverage"] == pytest.approx((T - 4) / T)
    # A third track on the right hand (frame 5): a ghost row; a track labelled right on the
    # left hand (frame 6): a wrong-side row.
    ghost = {"track": [2, 3], "frame": [5, 6], "pose": two_hands["pose"][[0, 1], [5, 6]],
             "joints3d": two_hands["joints3d"][[0, 1], [5, 6]], "landmarks2d": two_hands["joints2d"][[0, 1], [5, 6]],
             "time_s": [5 / 30, 6 / 30], "betas": np.zeros((2, 10)), "transl": np.zeros((2, 3)),
             "joints2d_proj": two_hands["joints2d"][[0, 1], [5, 6]], "confidence": [1.0, 1.0], "filled": [False, False]}
    r = B.score_clip(_with_rows(base, ghost, handedness=("right", "left", "right", "right")), two_hands, detections=[])
    assert r["ghost_rows"] == 2 and r["wrong_side_rows"] == 1
    # A one-frame palm flip (180 deg about the viewing axis) on the right hand's track.
    take = _take_from_gt(two_hands, hands=[0])
    R = rodrigues(take.pose[10, 0].astype(np.float64))
    take.rows["pose"][10, 0] = rotation_to_axis_angle(np.diag([-1.0, -1.0, 1.0]) @ R)
    assert B.score_clip(take, two_hands, detections=[])["flips"] == 2   # there and back
    # Joints 20 % too far: depth error 0.2, the shape (PA-MPJPE) untouched.
    take = _take_from_gt(two_hands, hands=[0])
    take.rows["joints3d"] = take.rows["joints3d"] * 1.2
    r = B.score_clip(take, two_hands, detections=[])
    assert r["depth_err_median"] == pytest.approx(0.2, abs=1e-4) and r["pa_mpjpe_mm"] < 1e-3
    # Every finger bent by 30 deg more at its middle joint: about 30 deg flexion error.
    take = _take_from_gt(two_hands, hands=[1])
    middle = [2, 5, 8, 11, 14]                                        # index2, middle2, pinky2, ring2, thumb2
    take.rows["pose"][:, middle] = rotation_to_axis_angle(
        rodrigues(take.pose[:, middle].astype(np.float64)) @ rodrigues(np.array([0.0, 0.0, np.radians(30)])))
    r = B.score_clip(take, two_hands, detections=[])
    assert 20.0 < r["straight_flexion_err_deg_median"] < 40.0


def test_coincident_rows_counts_two_rows_on_one_hand_but_not_two_hands_side_by_side():
    a = np.random.default_rng(0).uniform(100, 200, (21, 2))
    beside = a + np.array([60.0, 20.0])            # touching hands: boxes overlap, centres apart
    lm = np.stack([a, a + 5, beside, a])
    assert F.coincident_rows(np.array([0, 0, 0, 1]), lm) == 1
    assert F.coincident_rows(np.array([0, 1, 2, 3]), lm) == 0


def test_count_flips_ignores_turns_the_truth_makes_and_gaps():
    R = rodrigues(np.array([[0, 0, 0], [0, 0, 0], [0, 0, np.pi], [0, 0, np.pi]], float))
    assert F.count_flips(np.array([0, 1, 2, 3]), R) == 1
    assert F.count_flips(np.array([0, 1, 5, 6]), R) == 0           # not consecutive frames
    assert F.count_flips(np.array([0, 1, 2, 3]), R, R_gt=R) == 0   # the truth turned too


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_rendered_clips_ground_truth_is_what_the_generator_makes(models):
    pairs = C.clip_paths()
    if not pairs:
        pytest.skip("no rendered fidelity clips in benchmarks/fidelity_clips")
    for video, gt_path in pairs:
        stored = C.load_clip_gt(gt_path)
        clip = C.clip_by_name(video.stem)
        new, _ = C.make_clip(clip, models)
        assert str(stored["model_digest"]) == str(new["model_digest"]), (
            f"{video.name} was rendered from another open hand model: `python -m dahyf.sample_video --clips "
            "benchmarks/fidelity_clips`")
        for k in ("pose", "joints3d", "joints2d", "visible"):
            np.testing.assert_allclose(stored[k], new[k], atol=1e-4, err_msg=f"{video.name} {k}")


def test_capture_of_a_rendered_clip_scores_within_bounds_end_to_end():
    """Real MediaPipe + the bundled engine on the first 10 frames of a rendered clip, focal unknown."""
    import dahyf

    pairs = dict((v.stem, (v, g)) for v, g in C.clip_paths())
    if "open_edge_turn" not in pairs:
        pytest.skip("open_edge_turn is not rendered")
    video, gt_path = pairs["open_edge_turn"]
    n = 10
    gt = {k: (v[:, :n] if k in ("pose", "transl", "joints3d", "joints2d", "visible") else v)
          for k, v in C.load_clip_gt(gt_path).items()}
    take = dahyf.load_engine(device="cpu").capture(str(video), hands="both", frame_range=(0, n))
    r = B.score_clip(take, gt, B.mediapipe_detections(video, (0, n)))
    assert r["coverage"] == 1.0 and r["coverage_mediapipe_alone"] == 1.0
    assert r["ghost_rows"] == r["wrong_side_rows"] == r["unmatched_rows"] == 0
    assert r["pa_mpjpe_mm"] < 15.0 and r["orient_err_deg_median"] < 30.0, r
    assert r["focal_used"] != r["focal_true"]       # the engine was not told the focal


def test_a_held_bottle_and_a_nearer_hand_hide_keypoints_behind_them():
    centre, axis = np.array([[0.0, 0.0, 0.5]]), np.array([[0.0, 1.0, 0.0]])     # an upright bottle 0.5 m away
    pts = np.array([[[0.0, 0.0, 0.6], [0.0, 0.0, 0.4], [0.05, 0.0, 0.6], [0.0, 0.2, 0.6]]])
    hidden = O.hidden_by_cylinder(pts, centre, axis, radius=0.03, length=0.2)
    assert hidden.tolist() == [[True, False, False, False]]   # behind it; in front; beside; past its end
    j2d = np.zeros((2, 1, 21, 2))
    j2d[0, 0] = np.random.default_rng(0).uniform(100, 200, (21, 2))                  # the near hand's outline
    j2d[1, 0] = j2d[0, 0] + np.array([50.0, 0.0])                                     # the far hand, overlapping
    j3d = np.zeros((2, 1, 21, 3))
    j3d[0, ..., 2], j3d[1, ..., 2] = 0.45, 0.55
    hid = O.hidden_by_nearer_hand(j2d, j3d)
    assert not hid[0].any() and 0 < hid[1].sum() < 21


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_the_grip_clip_renders_a_coloured_bottle_that_hides_the_palm_side(models):
    gt, meshes = C.make_clip(C.clip_by_name("grip_bottle"), models)
    bottle = [m for m in meshes if len(m) == 4]
    assert len(bottle) == 1 and bottle[0][3] == C.Grip().colour
    shown = gt["keypoints_shown"][0].mean(-1)
    assert shown.min() < 0.75 and shown.max() > 0.9       # turned to the palm side, the bottle hides more


@pytest.mark.needs_torch  # sample_video.clips poses the hand with torch
def test_filled_rows_count_for_coverage_by_where_the_hand_is_drawn_not_for_the_3d_figures(two_hands):
    take = _take_from_gt(two_hands, hands=[0])
    take.rows["filled"][5:8] = True
    take.rows["landmarks2d"] = take.landmarks2d.copy()
    take.rows["landmarks2d"][5:8] = 0.0                  # filled rows have no detection of their own
    take.rows["joints3d"][5:8] *= 1.5                     # and are off in 3-D
    r = B.score_clip(take, two_hands, detections=[])
    T = two_hands["visible"].shape[1]
    assert r["coverage"] == pytest.approx(0.5) and r["coverage_detected"] == pytest.approx((T - 3) / (2 * T))
    assert r["pa_mpjpe_mm"] < 1e-3 and r["depth_err_median"] < 1e-6 and r["filled_rows"] == 3
    assert r["unmatched_rows"] == 0
