"""The whole capture on real frames: real MediaPipe, the real decoder, the bundled engine.

Short clips (640x360, a few dozen frames of the shared video) keep this under a minute on 2 cores.
"""
from __future__ import annotations

import math
import threading

import cv2
import numpy as np
import pytest

from dahyf.capture.engine import DEFAULT_CHECKPOINT, load_engine
from dahyf.capture.errors import CaptureError
from dahyf.capture.filters import FILTER_KINDS, PoseSample, make_filter
from dahyf.capture.stages import TrackSample, TrackState
from dahyf.capture.take import ROW_FIELDS, Take
from test_capture_media import (VFR_DURATIONS, hand_clip, hand_frames, rotated_copy,  # noqa: F401
                                vfr_copy, write_clip)


@pytest.fixture(scope="module")
def engine():
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip(f"the bundled engine {DEFAULT_CHECKPOINT.name} has not been trained yet")
    return load_engine(device="cpu")


def _hand_size(lm):
    return np.linalg.norm(lm.max(1) - lm.min(1), axis=-1)


def test_capture_both_hands(engine, hand_clip):
    take = engine.capture(hand_clip)
    assert take.handedness == ("right", "left") and take.image_size == (640, 360)
    assert take.focal == pytest.approx(math.hypot(640, 360))
    take.validate()
    for t in take.tracks():
        assert len(t) >= 35, t.handedness                       # both hands are in view throughout
        assert np.all(np.diff(t.frame) > 0)
        np.testing.assert_allclose(t.time_s, t.frame / 30.0, atol=1e-3)
        assert np.all(t.betas == t.betas[0])                     # one β per track
        err = np.linalg.norm(t.joints2d_proj - t.landmarks2d, axis=-1).mean(-1) / _hand_size(t.landmarks2d)
        assert np.median(err) < 0.1, t.handedness
        assert np.all(t.transl[:, 2] > 0)                        # in front of the camera
    # the person faces the camera: their right hand is on the image's left
    assert take.track_for("right").landmarks2d[..., 0].mean() < take.track_for("left").landmarks2d[..., 0].mean()


def test_stream_yields_ordered_chunks_with_progress(engine, hand_clip):
    seen = []
    chunks = list(engine.stream(hand_clip, hands="right", chunk_frames=8,
                                progress=lambda done, total: seen.append((done, total))))
    assert len(chunks) >= 5 and chunks[-1].final and not any(c.final for c in chunks[:-1])
    frames = np.concatenate([c.rows["frame"] for c in chunks])
    assert np.all(np.diff(frames) > 0)                           # one track: strictly increasing
    assert seen[-1] == (40, 40) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert Take.from_chunks(chunks).handedness == ("right",)


def test_cancel_keeps_a_valid_take(engine, hand_clip, tmp_path):
    cancel = threading.Event()
    chunks = []
    for chunk in engine.stream(hand_clip, chunk_frames=8, cancel=cancel):
        chunks.append(chunk)
        cancel.set()
    assert chunks[-1].cancelled and chunks[-1].frames_done < 40
    take = Take.from_chunks(chunks)
    assert take.meta["cancelled"] and not take.meta["complete"]
    assert 0 < len(take) and take.frame.max() < chunks[-1].frames_done
    back = Take.load(take.save(tmp_path / "partial.npz"))
    assert len(back) == len(take)


@pytest.mark.parametrize("smooth", (0.0, 0.6))
@pytest.mark.parametrize("kind", sorted(FILTER_KINDS))
def test_confidence_gate_holds_the_last_confident_pose(kind, smooth):
    # threshold 0.5: a confidence equal to it is confident; a low first frame has nothing to hold
    # (flagged, kept); the gate acts before the filter, with or without smoothing
    conf = [0.3, 0.9, 0.5, 0.1, 0.8, 0.5, 0.49, 0.9]
    held_from = [0, 1, 2, 2, 4, 5, 5, 7]
    filled = [True, False, False, True, False, False, True, False]
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=0.3, size=(8, 16, 3))
    transl = rng.normal(size=(8, 3))
    st = TrackState(0, "right", threshold=0.5, pose_filter=make_filter(kind, smooth, 30.0), fps=30.0)
    for i in range(8):
        st.push(TrackSample(i, i / 30, poses[i], transl[i], np.full((21, 2), i), conf[i]), np.zeros(10))
    st.advance(7, flush=True)
    ref = make_filter(kind, smooth, 30.0)                        # the same filter on the gated input
    want = [o for i, h in enumerate(held_from) for o in ref.push(PoseSample(i, i / 30, poses[h], transl[h]))]
    want += ref.flush()
    out = st.pending
    assert [s.frame for s in out] == list(range(8)) and [w.frame for w in want] == list(range(8))
    assert [s.filled for s in out] == filled
    assert [s.confidence for s in out] == conf and [s.landmarks2d[0, 0] for s in out] == list(range(8))
    for s, w in zip(out, want):
        np.testing.assert_allclose(s.pose, w.pose, atol=1e-12)
        np.testing.assert_allclose(s.transl, w.transl, atol=1e-12)
    if smooth == 0.0 and kind == "zero_lag":                     # no smoothing: exactly the held poses
        for s, h in zip(out, held_from):
            np.testing.assert_allclose(s.pose, poses[h], atol=1e-9)


def test_cli_capture_with_preview(hand_clip, tmp_path, engine):
    from dahyf.cli import main

    out, prev = tmp_path / "takes" / "take.npz", tmp_path / "preview.mp4"  # takes/ is created
    assert main(["capture", str(hand_clip), "-o", str(out), "--preview", str(prev), "--quiet",
                 "--frames", "0:12", "--smooth", "0.3"]) == 0
    take = Take.load(out)
    assert take.meta["smooth"] == 0.3 and take.meta["source"] == "hands.mp4" and take.frame.max() == 11
    cap = cv2.VideoCapture(str(prev))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 12
    ok, frame = cap.read()
    assert ok and frame.shape == (360, 640, 3)
    orig = cv2.VideoCapture(str(hand_clip)).read()[1]
    assert np.abs(frame.astype(int) - orig).max() > 100          # something was drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.mp4", "takes"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["take.json", "take.npz"]
    assert (prev.stat().st_mode & 0o777) == (out.stat().st_mode & 0o777)


def test_cli_reports_bad_input_and_writes_nothing(tmp_path, capsys, engine):
    from dahyf.cli import main

    out = tmp_path / "take.npz"
    assert main(["capture", str(tmp_path / "missing.mp4"), "-o", str(out), "--quiet"]) == 1
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert main(["capture", str(tmp_path / "empty.mp4"), "-o", str(out), "--quiet"]) == 1
    assert "empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4"]


def test_video_without_hands_stops_with_a_clear_message(engine, tmp_path, capsys):
    from dahyf.cli import main

    x = np.linspace(0, 255, 320, dtype=np.uint8)
    frames = [np.dstack([np.tile(np.roll(x, 5 * i), (240, 1))] * 3) for i in range(15)]
    video = write_clip(tmp_path / "nohands.mp4", frames)
    with pytest.raises(CaptureError, match="no hand was found in 15 frames"):
        engine.capture(video)
    assert main(["capture", str(video), "-o", str(tmp_path / "t.npz"), "--quiet"]) == 1
    assert "no hand was found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nohands.mp4"]


def test_one_frame_video(engine, hand_frames, tmp_path):
    take = engine.capture(write_clip(tmp_path / "one.mp4", hand_frames[:1]))
    assert sorted(take.frame.tolist()) == [0, 0] and take.meta["frames_done"] == 1


def test_portrait_video_from_rotation_metadata(engine, shared_video, tmp_path):
    from test_capture_media import read_frames

    # frames 100..107: hands apart (MediaPipe finds only one of the two hands over the face, turned)
    frames = read_frames(shared_video, 100, 8, (640, 360))
    video = rotated_copy(write_clip(tmp_path / "land.mp4", frames), tmp_path / "portrait.mp4", 90)
    take = engine.capture(video)
    assert take.image_size == (360, 640) and take.meta["rotation"] == 90
    right, left = take.track_for("right"), take.track_for("left")
    assert len(right) >= 6 and len(left) >= 6
    # turned 90 degrees clockwise, the image's left (the person's right hand) is now at the top
    assert right.landmarks2d[..., 1].mean() < left.landmarks2d[..., 1].mean()
    assert np.all((take.landmarks2d >= -20) & (take.landmarks2d <= [380, 660]))


def test_4k_frames(engine, shared_video, tmp_path):
    from test_capture_media import read_frames

    frames = read_frames(shared_video, 100, 3, (3840, 2160))
    take = engine.capture(write_clip(tmp_path / "uhd.mp4", frames), hands="right")
    assert take.image_size == (3840, 2160) and len(take) == 3
    assert take.focal == pytest.approx(math.hypot(3840, 2160))
    size = _hand_size(take.landmarks2d)
    assert np.all(size > 250)                                    # the hand is big in 4K pixels
    err = np.linalg.norm(take.joints2d_proj - take.landmarks2d, axis=-1).mean(-1) / size
    assert np.median(err) < 0.1


def test_variable_frame_rate_keeps_real_timestamps(engine, hand_frames, tmp_path):
    video = vfr_copy(write_clip(tmp_path / "cfr.mp4", hand_frames[:10]), tmp_path / "vfr.mp4", VFR_DURATIONS)
    take = engine.capture(video, hands="right")
    expect = np.concatenate([[0], np.cumsum(VFR_DURATIONS)[:-1]])
    np.testing.assert_allclose(take.time_s, expect[take.frame], atol=1e-3)


def test_cuda_device_without_gpu_is_a_clear_error():
    """Without a GPU, or without torch (the Python 3.13 tier), --device cuda is refused with a message."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is present")
    with pytest.raises(CaptureError, match="no CUDA GPU"):
        load_engine(device="cuda")


def test_rows_have_the_take_fields(engine, hand_frames, tmp_path):
    chunks = list(engine.stream(write_clip(tmp_path / "c.mp4", hand_frames[:4]), chunk_frames=2))
    for c in chunks:
        for k, (shape, dt) in ROW_FIELDS.items():
            assert c.rows[k].shape[1:] == shape and c.rows[k].dtype == np.dtype(dt)


def test_causal_one_euro_filter_capture(engine, hand_clip):
    zero_lag = engine.capture(hand_clip, hands="right", smooth=0.5)
    causal = engine.capture(hand_clip, hands="right", smooth=0.5, filter="one_euro")
    raw = engine.capture(hand_clip, hands="right", smooth=0.0)
    np.testing.assert_array_equal(causal.frame, raw.frame)
    assert causal.meta["filter"] == "one_euro"

    def accel(t):
        return np.linalg.norm(np.diff(t.joints2d_proj, 2, axis=0), axis=-1).mean()

    # both filters calm the per-frame estimates down
    assert accel(causal) < accel(raw) and accel(zero_lag) < accel(raw)


def test_cli_interrupted_during_the_preview_says_the_take_was_written(tmp_path, capsys, engine, monkeypatch):
    # Ctrl-C while the preview is drawn: the take is already saved, and the message must say so.
    from dahyf.capture import preview
    from dahyf.cli import main
    from dahyf.sample_video import SAMPLE_VIDEO

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(preview, "write_preview", interrupted)
    out = tmp_path / "take.npz"
    assert main(["capture", str(SAMPLE_VIDEO), "-o", str(out), "--preview", str(tmp_path / "p.mp4"),
                 "--quiet", "--frames", "0:3", "--hands", "right"]) == 130
    err = capsys.readouterr().err
    assert "nothing was written" not in err and str(out) in err
    assert len(Take.load(out)) == 3


def test_cli_bad_checkpoint_message_is_said_once(tmp_path, capsys):
    from dahyf.cli import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["capture", str(bad), "-o", str(tmp_path / "t.npz"), "--checkpoint", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "bad.pt is not a readable DaHyF checkpoint" in err and ".." not in err


def test_demo_without_blender_reports_capture_errors(tmp_path, capsys):
    # The take-only path of `dahyf demo` (no bpy): a bad checkpoint is a message, not a traceback.
    import argparse

    from dahyf import demo
    from dahyf.sample_video import SAMPLE_VIDEO

    args = argparse.Namespace(checkpoint=str(tmp_path / "missing.pt"), hands="right", frame_range=None)
    assert demo._take_only(SAMPLE_VIDEO, tmp_path, args, "no bpy") == 1
    assert "Checkpoint not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_keypoint_function_matches_the_hand_model_and_takes_no_rows():
    from dahyf.hand.model import keypoint_function
    from dahyf.hand.model import load_hand_model

    hand = load_hand_model("open", "left")
    f = keypoint_function(hand)
    assert f(np.zeros((0, 16, 3)), np.zeros((0, 10)), np.zeros((0, 3))).shape == (0, 21, 3)
    rng = np.random.default_rng(1)
    pose, betas = rng.normal(scale=0.3, size=(3, 16, 3)), rng.normal(size=(3, 10))
    transl = np.array([[0.0, 0.0, 0.5]] * 3)
    want = hand(pose.astype(np.float32), betas.astype(np.float32), transl.astype(np.float32)).keypoints
    np.testing.assert_allclose(f(pose, betas, transl), want, atol=1e-5)


def test_cli_preview_that_cannot_be_written_is_a_message_not_a_traceback(tmp_path, capsys, engine):
    from dahyf.cli import main
    from dahyf.sample_video import SAMPLE_VIDEO

    (tmp_path / "p.mp4").mkdir()                                  # the preview path is a folder
    out = tmp_path / "take.npz"
    assert main(["capture", str(SAMPLE_VIDEO), "-o", str(out), "--preview", str(tmp_path / "p.mp4"),
                 "--quiet", "--frames", "0:3", "--hands", "right"]) == 1
    assert "Cannot write the preview" in capsys.readouterr().err     # found before the capture
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.mp4"]     # nothing written, no .partial left


def test_truncated_video_is_captured_but_flagged(tmp_path, capsys, engine):
    # An AVI cut in half still decodes (its header announces 24 frames, 12 or so are there): the take
    # covers what decodes, meta says it ended early, and the CLI warns instead of pretending all is well.
    from dahyf.cli import main
    from dahyf.sample_video import SAMPLE_VIDEO

    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for _ in range(24):
        writer.write(cap.read()[1])
    writer.release()
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert engine.capture(whole, hands="right").meta["ended_early"] is False
    take = engine.capture(cut, hands="right")
    assert take.meta["ended_early"] is True and 0 < take.meta["frames_done"] < 24
    assert main(["capture", str(cut), "-o", str(tmp_path / "t.npz"), "--hands", "right", "--quiet"]) == 0
    assert "may be truncated" in capsys.readouterr().err
    assert Take.load(tmp_path / "t.npz").meta["ended_early"] is True
    # a range inside the announced length but past what decodes: not "no hand was found in 0 frames"
    with pytest.raises(CaptureError, match="no frame could be decoded in frames 20:24"):
        engine.capture(cut, hands="right", frame_range=(20, 24))


class _PassThrough:
    """A third filter (no smoothing at all), registered by the test only: the pipeline must take
    it by name, with no code of its own for it."""

    causal, lag = True, 0

    @classmethod
    def from_smoothing(cls, smooth, fps):
        return cls()

    def push(self, sample):
        return [sample]

    def advance_to(self, frame):
        return []

    def flush(self):
        return []


def test_a_new_filter_plugs_into_the_pipeline_by_name(engine, hand_clip, monkeypatch):
    from dahyf.capture.filters import FILTER_KINDS
    from dahyf.capture.pipeline import CapturePipeline
    from dahyf.capture.video import VideoReader

    monkeypatch.setitem(FILTER_KINDS, "pass_through", _PassThrough)
    models = engine.hand_models(("right",))

    def run(kind, smooth):
        pipe = CapturePipeline(engine.estimator, models, hands="right", filter_kind=kind, smooth=smooth, chunk_frames=8)
        return Take.from_chunks(list(pipe.run(VideoReader(hand_clip))))

    mine, unsmoothed = run("pass_through", 0.7), run("zero_lag", 0.0)
    np.testing.assert_array_equal(mine.frame, unsmoothed.frame)
    np.testing.assert_array_equal(mine.filled, unsmoothed.filled)
    np.testing.assert_allclose(mine.pose, unsmoothed.pose, atol=1e-5)   # sigma 0: the same rows
    with pytest.raises(CaptureError, match="pass_through, got 'nope'"):
        CapturePipeline(engine.estimator, models, filter_kind="nope")
