"""Coverage recovery of offline capture (issue 11 §4): short gaps interpolated on SO(3) and flagged,
long ones left empty; recovered detections only where the neighbouring frames put the hand and never
on a hand another track holds; backward re-tracking and region re-detection on real rendered frames."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf.capture.filters import make_filter
from dahyf.capture.recovery import RecoveryCounts, pick, plausible, predict_region, region_box
from dahyf.capture.stages import VANISH_RATE, TrackSample, TrackState, interpolate_gap, vanishing_ends
from dahyf.capture.tracking import Detection
from dahyf.hand import quaternion as Q


def _sample(frame, angle=0.0, x=0.0, conf=0.95):
    pose = np.zeros((16, 3))
    pose[0] = [0.0, 0.0, angle]
    return TrackSample(frame, frame / 30.0, pose, np.array([x, 0.0, 0.5]), np.full((21, 2), 100.0 + x, np.float32),
                       conf)


def _rows(state: TrackState, samples):
    for s in samples:
        state.push(s, np.zeros(10))
    state.advance(samples[-1].frame, flush=True)
    state.maybe_freeze(samples[-1].frame, force=True)
    return state.take_pending(np.inf)


def test_a_short_gap_is_filled_on_the_geodesic_and_flagged():
    st = TrackState(0, "right", 0.5, make_filter("zero_lag", 0.0, 30.0), 30.0, fill_gaps=True)
    assert st.fill_frames == 9                     # 0.3 s at 30 frames/s
    samples = [_sample(f, 0.1 * f, 0.01 * f) for f in range(5)] + [_sample(f, 0.1 * f, 0.01 * f) for f in range(10, 14)]
    rows = _rows(st, samples)
    assert [r.frame for r in rows] == list(range(14))
    filled = [r.frame for r in rows if r.filled]
    assert filled == [5, 6, 7, 8, 9] and st.filled_gap_rows == 5
    for r in rows:   # a rotation about z growing 0.1 rad per frame: the geodesic gives it back exactly
        np.testing.assert_allclose(r.pose[0], [0.0, 0.0, 0.1 * r.frame], atol=1e-9)
        assert r.transl[0] == pytest.approx(0.01 * r.frame)


def test_a_long_gap_stays_empty_and_no_gap_is_filled_without_fill_gaps():
    st = TrackState(0, "right", 0.5, make_filter("zero_lag", 0.0, 30.0), 30.0, fill_gaps=True)
    rows = _rows(st, [_sample(f) for f in range(3)] + [_sample(f) for f in range(14, 16)])   # 10 frames missing
    assert [r.frame for r in rows] == [0, 1, 2, 14, 15] and not any(r.filled for r in rows)
    st = TrackState(0, "right", 0.5, make_filter("zero_lag", 0.0, 30.0), 30.0)
    rows = _rows(st, [_sample(f) for f in range(3)] + [_sample(f) for f in range(6, 8)])
    assert [r.frame for r in rows] == [0, 1, 2, 6, 7]


def test_rows_around_a_filled_gap_are_smoothed_as_if_the_hand_had_been_seen():
    """The pipeline advances the filter after each chunk, before it knows that a gap will close: the
    filter runs fill_frames late, so the rows before the gap are smoothed with the filled rows after
    it — the stream gives what the offline smoother gives on the whole filled track."""
    from dahyf.capture.filters import centred_smooth

    sm = make_filter("zero_lag", 0.5, 30.0)
    st = TrackState(0, "right", 0.5, sm, 30.0, fill_gaps=True)
    rng = np.random.default_rng(0)
    samples = [_sample(f, 0.05 * f + 0.02 * rng.normal()) for f in list(range(20)) + list(range(27, 40))]
    for s in samples[:20]:
        st.push(s, np.zeros(10))
    st.advance(26)                                  # the stream moved on without the hand ...
    for s in samples[20:]:                          # ... which comes back 7 frames later
        st.push(s, np.zeros(10))
    st.advance(40, flush=True)
    st.maybe_freeze(40, force=True)
    out = st.take_pending(np.inf)
    assert [r.frame for r in out] == list(range(40))
    full = samples[:20] + interpolate_gap(samples[19], samples[20]) + samples[20:]
    ref, _ = centred_smooth(np.arange(40), np.stack([s.pose for s in full]), np.stack([s.transl for s in full]),
                            sm.sigma, sm.half_window, sm.degree)
    np.testing.assert_allclose(np.stack([r.pose for r in out]), ref, atol=1e-9)


def test_interpolated_rows_take_the_frames_real_times_and_the_lower_confidence():
    a, b = _sample(3, conf=0.9), _sample(6, 0.3, conf=0.7)
    rows = interpolate_gap(a, b, {4: 0.2, 5: 0.21})
    assert [r.time_s for r in rows] == [0.2, 0.21]
    assert all(r.filled and r.confidence == pytest.approx(0.7) for r in rows)
    q = Q.from_axis_angle(rows[0].pose[0])
    assert np.degrees(2 * np.arccos(min(1.0, abs(q[0])))) == pytest.approx(np.degrees(0.1), abs=1e-6)


def _det(cx, cy, size=100.0, side="right"):
    base = np.stack([np.cos(np.linspace(0, 6, 21)), np.sin(np.linspace(0, 6, 21))], 1) * size / (2 * np.sqrt(2))
    return Detection((base + [cx, cy]).astype(np.float32), side, 0.9)


def test_predicted_region_follows_the_chain_forward_and_backward():
    d0, d1 = _det(100, 100), _det(130, 100)
    c, s = predict_region([(10, d0), (11, d1)], 12)
    np.testing.assert_allclose(c, d1.centre + (d1.centre - d0.centre), atol=1e-4)
    c, _ = predict_region([(11, d1), (10, d0)], 9)          # going backward
    np.testing.assert_allclose(c, d0.centre - (d1.centre - d0.centre), atol=1e-4)
    assert region_box(np.array([-200.0, 50.0]), 100.0, (480, 360)) is None   # wholly out of the image
    assert region_box(np.array([-20.0, 50.0]), 100.0, (480, 360))[2] == pytest.approx(200.0)


def test_a_recovered_detection_must_be_near_the_prediction_and_not_another_tracks_hand():
    centre, size = _det(200, 150).centre, _det(200, 150).size
    near, far, tiny = _det(215, 150), _det(320, 150), _det(205, 150, size=20.0)
    assert plausible(near, centre, size) and not plausible(far, centre, size) and not plausible(tiny, centre, size)
    assert pick([far, near], centre, size, taken=[]) is near
    # the other track already holds this hand in that frame: recovering it would make a ghost
    assert pick([near], centre, size, taken=[_det(214, 151, side="left")]) is None
    assert RecoveryCounts(backward=2, region=3).to_meta()["recovered_region_rows"] == 3


# --- orientation continuity ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reproject():
    from dahyf.hand.model import keypoint_function
    from dahyf.geometry import project_points
    from dahyf.hand.model import load_hand_model

    kp = keypoint_function(load_hand_model("open", "right"))

    def f(pose, transl, betas):
        b = np.repeat(np.asarray(betas, np.float32)[None], len(pose), axis=0)
        return project_points(kp(pose, b, transl), 600.0, (640, 480))

    return f


def _turning_hand(reproject, n=12):
    """A hand turning slowly (3 deg per frame) at 0.5 m, its landmarks its own projection."""
    pose = np.zeros((n, 16, 3))
    pose[:, 0] = np.stack([[0.0, np.radians(3.0 * f), 0.0] for f in range(n)])
    pose[:, 1:4, 2] = 0.3                                   # a curled index finger
    transl = np.tile([0.0, 0.0, 0.5], (n, 1))
    lm = reproject(pose, transl, np.zeros(10)).astype(np.float32)
    return pose, transl, lm


def _run_guard(reproject, pose, transl, lm):
    st = TrackState(0, "right", 0.5, make_filter("zero_lag", 0.0, 30.0), 30.0, reproject=reproject)
    for f in range(len(pose)):
        st.push(TrackSample(f, f / 30.0, pose[f], transl[f], lm[f], 0.95), np.zeros(10))
    st.advance(len(pose), flush=True)
    st.maybe_freeze(len(pose), force=True)
    out = st.take_pending(np.inf)
    assert [r.frame for r in out] == list(range(len(pose)))
    return st, np.stack([r.pose for r in out]), np.stack([r.transl for r in out])


def _flip(pose, frame, deg):
    from dahyf.hand.kinematics import batch_rodrigues, matrix_to_axis_angle

    out = pose.copy()
    R = batch_rodrigues(np.array([[np.radians(deg), 0.0, 0.0]])) @ batch_rodrigues(pose[frame, 0][None])
    out[frame, 0] = matrix_to_axis_angle(R)[0]
    return out


def test_a_one_frame_palm_flip_the_landmarks_do_not_show_is_put_back(reproject):
    pose, transl, lm = _turning_hand(reproject)
    flipped = _flip(pose, 6, 70.0)                          # the estimate flips; the landmarks do not
    st, out, _ = _run_guard(reproject, flipped, transl, lm)
    assert st.spike_rows == 1
    np.testing.assert_allclose(out[6, 0], pose[6, 0], atol=1e-6)
    np.testing.assert_allclose(out[6, 1:], flipped[6, 1:])  # the fingers are the estimate's
    np.testing.assert_allclose(out[[5, 7]], flipped[[5, 7]])


def test_a_turn_the_landmarks_show_is_kept(reproject):
    pose, transl, _ = _turning_hand(reproject)
    flipped = _flip(pose, 6, 70.0)
    lm = reproject(flipped, transl, np.zeros(10)).astype(np.float32)   # the hand really turned there
    st, out, _ = _run_guard(reproject, flipped, transl, lm)
    assert st.spike_rows == 0
    np.testing.assert_allclose(out, flipped)


def test_a_two_frame_depth_spike_is_put_back_on_the_line(reproject):
    pose, transl, lm = _turning_hand(reproject)
    spiked = transl.copy()
    spiked[[4, 5], 2] *= 1.35                                # 17 cm further for two frames, same landmarks
    st, out, out_t = _run_guard(reproject, pose, spiked, lm)
    assert st.spike_rows == 2
    np.testing.assert_allclose(out_t[:, 2], 0.5, atol=1e-9)
    np.testing.assert_allclose(out, pose)


def test_vanishing_ends_counts_the_rows_that_fly_away_at_either_end():
    fps = 30.0
    step = np.exp(1.2 * VANISH_RATE / fps)                   # 20 % faster than the limit, per frame
    steady = np.full(10, 0.5)
    tail = np.concatenate([steady, 0.5 * step ** np.arange(1, 4)])          # 3 rows receding at the end
    assert vanishing_ends(tail, fps, 6) == (0, 3)
    assert vanishing_ends(tail, fps, 2) == (0, 2)                           # at most max_rows
    assert vanishing_ends(tail, fps, 6, tail=False) == (0, 0)
    head = np.concatenate([0.5 * step ** np.arange(2, 0, -1), steady])      # 2 rows approaching at the start
    assert vanishing_ends(head, fps, 6) == (2, 0)
    slow = 0.5 * np.exp(0.8 * VANISH_RATE / fps) ** np.arange(12)           # a hand walking away: kept
    assert vanishing_ends(slow, fps, 6) == (0, 0)
    assert vanishing_ends(0.5 * step ** np.arange(4), fps, 6) == (0, 3)     # at least one row is left


def _run_with_gap(reproject, transl, frames):
    """A turning hand at ``transl`` (n, 3) m pushed at ``frames`` (n,) into an offline track."""
    pose, _, lm = _turning_hand(reproject, len(frames))
    st = TrackState(0, "right", 0.5, make_filter("zero_lag", 0.0, 30.0), 30.0, fill_gaps=True, reproject=reproject)
    for k, f in enumerate(frames):
        st.push(TrackSample(int(f), f / 30.0, pose[k], transl[k], lm[k], 0.95), np.zeros(10), {})
        st.advance(int(f))
    st.advance(int(frames[-1]) + 1, flush=True)
    st.maybe_freeze(int(frames[-1]) + 1, force=True)
    return st, [r.frame for r in st.take_pending(np.inf)]


def test_a_hand_flying_away_as_it_vanishes_is_trimmed_at_the_run_end_not_mid_run(reproject):
    """A run whose last three rows recede at 1.5 x VANISH_RATE (a hand sliding behind something),
    a gap longer than FILL_GAP_S, then a second run that starts flying in and ends normally: the
    first run loses its three last rows, the second its two first; the same depth swing in the
    middle of a run is kept (mid-run excursions are the continuity check's)."""
    z_out = 0.5 * np.exp(1.5 * VANISH_RATE / 30.0) ** np.arange(1, 4)
    first = np.concatenate([np.full(12, 0.5), z_out])                      # frames 0..14
    second = np.concatenate([0.5 * np.exp(1.5 * VANISH_RATE / 30.0) ** np.arange(2, 0, -1), np.full(12, 0.5)])
    frames = np.concatenate([np.arange(15), np.arange(40, 54)])
    transl = np.zeros((len(frames), 3))
    transl[:, 2] = np.concatenate([first, second])
    st, kept = _run_with_gap(reproject, transl, frames)
    assert kept == list(range(12)) + list(range(42, 54)) and st.end_trimmed_rows == 5
    middle = np.concatenate([np.full(8, 0.5), z_out, np.full(8, 0.5)])      # the swing mid-run
    frames = np.arange(len(middle))
    transl = np.zeros((len(middle), 3))
    transl[:, 2] = middle
    st, kept = _run_with_gap(reproject, transl, frames)
    assert kept == list(frames) and st.end_trimmed_rows == 0


# --- on real rendered frames (MediaPipe, the bundled engine) ----------------------------------------
def _clip(name):
    from dahyf.sample_video import clips as C

    pairs = {v.stem: (v, g) for v, g in C.clip_paths()}
    if name not in pairs:
        pytest.skip(f"{name} is not rendered (benchmarks/fidelity_clips)")
    video, gt_path = pairs[name]
    return video, C.load_clip_gt(gt_path)


@pytest.fixture(scope="module")
def engine():
    import dahyf

    return dahyf.load_engine(device="cpu")


def _on_truth(take, gt, hand=0):
    """Frames of the take's rows that lie on the true hand (mean keypoint distance < 0.35 hand sizes)."""
    from dahyf.eval.fidelity import match_rows

    lm = np.where(take.filled[:, None, None], take.joints2d_proj, take.landmarks2d)
    m = match_rows(np.asarray(take.frame), lm, gt["joints2d"])
    return set(np.asarray(take.frame)[m == hand].tolist()), set(np.asarray(take.frame)[m != hand].tolist())


def test_a_hand_entering_fingers_first_is_followed_back_to_its_first_frames(engine):
    video, gt = _clip("edge_enter")
    single = engine.capture(str(video), hands="right", frame_range=(0, 12), recover=False)
    take = engine.capture(str(video), hands="right", frame_range=(0, 12))      # offline: recovers by default
    assert take.meta["recover"] and take.meta["recovered_backward_rows"] >= 3
    assert take.meta["recovery_seek_mismatches"] == 0
    on, off = _on_truth(take, gt)
    assert not off and min(on) == 0 and len(on) == 12
    assert min(single.frame) >= 3                    # MediaPipe's forward pass sees it from frame 4 on


def test_a_clear_hand_the_palm_detector_misses_is_found_in_an_averaged_frame_and_blur_gaps_filled(engine):
    video, gt = _clip("blur_swipe")
    single = engine.capture(str(video), hands="right", frame_range=(8, 24), recover=False)
    take = engine.capture(str(video), hands="right", frame_range=(8, 24))
    assert len(single) < 8 and take.meta["recovered_region_rows"] >= 6
    on, off = _on_truth(take, gt)
    assert not off and on == set(range(8, 24))
    filled = set(take.frame[take.filled].tolist())
    assert filled and filled <= {13, 14, 15} and take.meta["gap_filled_rows"] == len(filled)


def test_a_backward_pass_whose_seek_lands_elsewhere_adds_nothing(engine):
    from dahyf.capture.video import VideoReader

    class Shifted(VideoReader):
        def frames_between(self, start, end):
            for f in super().frames_between(start, end):
                f.time_s += 0.1                  # the re-decoded frames are not the first pass's
                yield f

    video, _ = _clip("edge_enter")
    take = engine.capture(Shifted(video, (0, 12)), hands="right")
    assert take.meta["recovered_backward_rows"] == 0 and take.meta["recovery_seek_mismatches"] >= 1
    assert min(take.frame) >= 3


def test_the_online_single_pass_mode_recovers_nothing(engine):
    from dahyf.capture.engine import default_recover

    assert default_recover("zero_lag") and not default_recover("one_euro")
    video, _ = _clip("edge_enter")
    take = engine.capture(str(video), hands="right", frame_range=(0, 8), filter="one_euro")
    assert take.meta["recover"] is False and "recovered_backward_rows" not in take.meta
    assert "continuity_fixed_rows" not in take.meta and min(take.frame) >= 3


def test_the_focal_pass_sees_the_first_hands_and_every_row_uses_its_focal(engine, monkeypatch):
    """Offline capture holds the first FOCAL_WINDOW_S of detections (landmarks only; the chunks
    meanwhile carry progress), estimates the focal length from them, then captures with it."""
    from dahyf.assets import SAMPLE_VIDEO
    from dahyf.capture import pipeline as P
    from dahyf.capture.focal import FocalEstimate
    from dahyf.capture.take import Take
    from dahyf.geometry import project_points

    from dahyf.capture import recovery as R

    monkeypatch.setattr(P, "FOCAL_WINDOW_S", 0.5)           # 15 frames
    monkeypatch.setattr(R, "RECOVER_WINDOW_S", 0.2)         # frames leave recovery 6 frames late
    seen = []

    def focal_pass(tracks):
        seen.append([None if t is None else (len(t), t.world_landmarks.shape) for t in tracks])
        return FocalEstimate(700.0, 70.0, "self-calibrated", "a test's estimate")

    models = engine.hand_models(("right",))
    pipe = P.CapturePipeline(engine.estimator, models, hands="right", chunk_frames=8, recover=True,
                             focal_pass=focal_pass)
    from dahyf.capture.video import VideoReader

    chunks = list(pipe.run(VideoReader(SAMPLE_VIDEO, (0, 60))))
    assert seen == [[(15, (15, 21, 3))]]                      # one call, on the first 15 frames' hands
    assert [c.frames_done for c in chunks] == sorted(c.frames_done for c in chunks) and chunks[0].frames_done == 8
    assert len(chunks[0]) == 0                                 # held for the focal pass, progress reported
    take = Take.from_chunks(chunks)
    assert take.focal == 700.0 and take.meta["focal_source"] == "self-calibrated" and len(take) == 60
    np.testing.assert_allclose(take.joints2d_proj, project_points(take.joints3d, 700.0, take.image_size), atol=0.05)


def test_recovery_never_puts_the_other_hand_on_the_captured_side(engine, tmp_path):
    """hands='right' on a clip whose right hand turns into a left one after 4 frames (the sample's
    mirror image): the left hand, which the tracker holds on a side not captured, is not recovered
    as the lost right hand."""
    import cv2

    from dahyf.assets import SAMPLE_VIDEO

    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames = [cap.read()[1] for _ in range(16)]
    cap.release()
    path = tmp_path / "mostly_left.mp4"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for i, f in enumerate(frames):
        writer.write(f if i < 4 else cv2.flip(f, 1))
    writer.release()
    take = engine.capture(str(path), hands="right")
    assert take.frame.tolist() == [0, 1, 2, 3]
    both = engine.capture(str(path), hands="both")
    right, left = both.track_for("right"), both.track_for("left")
    assert right.frame.tolist() == [0, 1, 2, 3] and left.frame.min() >= 4
