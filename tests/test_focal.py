"""The focal length of a capture: container metadata, the user's value, self-calibration, the default."""
from __future__ import annotations

import math
import struct

import cv2
import numpy as np
import pytest

from dahyf.capture import focal as FC
from dahyf.capture import mp4meta
from dahyf.net.batch import HandBatch


# --- a movie with QuickTime metadata, written here ---------------------------------------------------
def _box(typ: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), typ) + payload


def _meta_box(key: str, data_type: int, value: bytes, iso_full_box: bool = False) -> bytes:
    """A ``meta`` box holding one ``mdta`` item (QuickTime layout; ISO full box when asked)."""
    k = key.encode()
    keys = _box(b"keys", b"\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">I4s", 8 + len(k), b"mdta") + k)
    data = _box(b"data", struct.pack(">I", data_type) + b"\0\0\0\0" + value)
    ilst = _box(b"ilst", _box(struct.pack(">I", 1), data))
    hdlr = _box(b"hdlr", b"\0" * 8 + b"mdta" + b"\0" * 13)
    return _box(b"meta", (b"\0\0\0\0" if iso_full_box else b"") + hdlr + keys + ilst)


def _write_clip(path, frames: int = 12, size=(96, 64)) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    assert w.isOpened()
    for i in range(frames):
        img = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.circle(img, (10 + 5 * i, size[1] // 2), 6, (0, 200, 255), -1)
        w.write(img)
    w.release()


def _insert_meta(path, meta: bytes, into_track: bool) -> None:
    """Add ``meta`` to the movie's ``moov`` (or its first ``trak``); the movie's ``moov`` must come
    after its media data (OpenCV writes it last), so no chunk offset moves."""
    buf = path.read_bytes()
    off, boxes = 0, []
    while off < len(buf):
        size, typ = struct.unpack(">I4s", buf[off:off + 8])
        boxes.append((typ, off, size))
        off += size
    types = [t for t, _, _ in boxes]
    assert types.index(b"moov") > types.index(b"mdat"), "the writer put moov first: chunk offsets would move"
    _, mo, ms = boxes[types.index(b"moov")]
    payload = buf[mo + 8:mo + ms]
    if into_track:
        o = 0
        while o < len(payload):
            size, typ = struct.unpack(">I4s", payload[o:o + 8])
            if typ == b"trak":
                payload = payload[:o] + _box(b"trak", payload[o + 8:o + size] + meta) + payload[o + size:]
                break
            o += size
        else:
            raise AssertionError("no trak")
    else:
        payload = payload + meta
    path.write_bytes(buf[:mo] + _box(b"moov", payload) + buf[mo + ms:])


@pytest.mark.parametrize("data_type,value,iso,track,expected", [
    (1, b"26.00mm", False, True, 26.0),       # UTF-8, track level (as an iPhone writes it)
    (1, b"27", True, False, 27.0),            # UTF-8, movie level, ISO full-box meta
    (21, (28).to_bytes(2, "big"), False, True, 28.0),   # big-endian signed integer
])
def test_container_focal_is_read_and_the_movie_still_decodes(tmp_path, data_type, value, iso, track, expected):
    from dahyf.capture.video import VideoReader

    path = tmp_path / "phone.mp4"
    _write_clip(path)
    _insert_meta(path, _meta_box(mp4meta.KEY_FOCAL_35MM, data_type, value, iso), into_track=track)
    meta = mp4meta.read_camera_metadata(path)
    assert meta["focal_35mm"] == pytest.approx(expected)
    assert meta["focal_key"] == mp4meta.KEY_FOCAL_35MM
    assert sum(1 for _ in VideoReader(path)) == 12           # the real decoder still reads every frame
    est = FC.estimate_focal([], (96, 64), meta)
    assert est.source == "metadata"
    assert est.focal_px == pytest.approx(expected * math.hypot(96, 64) / math.hypot(36, 24))
    assert est.sigma_px == pytest.approx(FC.METADATA_SIGMA * est.focal_px)
    assert est.to_meta()["focal_source"] == "metadata"


def test_files_without_usable_metadata_give_nothing(tmp_path):
    plain = tmp_path / "plain.mp4"
    _write_clip(plain)
    assert mp4meta.read_camera_metadata(plain) == {}
    other = tmp_path / "other.mp4"
    _write_clip(other)
    _insert_meta(other, _meta_box("com.example.something", 1, b"50mm"), into_track=False)
    assert mp4meta.read_camera_metadata(other) == {}
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\0\0\x10moov" + b"\xff" * 5)          # a box that claims more than the file holds
    assert mp4meta.read_camera_metadata(junk) == {}
    assert mp4meta.read_camera_metadata(tmp_path / "missing.mp4") == {}
    bad = tmp_path / "bad.mp4"
    _write_clip(bad)
    _insert_meta(bad, _meta_box(mp4meta.KEY_FOCAL_35MM, 1, b"unknown"), into_track=True)
    assert "focal_35mm" not in mp4meta.read_camera_metadata(bad)


def test_user_focal_wins_and_is_checked():
    est = FC.estimate_focal([], (640, 480), {"focal_35mm": 26.0}, user_focal=700.0)
    assert (est.focal_px, est.sigma_px, est.source) == (700.0, 0.0, "user")
    with pytest.raises(ValueError, match="millimetres"):
        FC.estimate_focal([], (640, 480), user_focal=26.0)


# --- self-calibration on hands of known geometry -------------------------------------------------------
def _hands_in_camera(image_size, focal, depth, n=48, seed=0):
    """Landmarks (n, 21, 2) px and exact metric shapes (n, 21, 3) m (as perfect world landmarks) of
    right hands in natural poses (the sample clip's scripted gestures, turned at random) at
    ``depth`` m, anywhere in the frame."""
    from dahyf import sample_video as sv
    from dahyf.geometry import project_points
    from dahyf.hand import load_hand_model
    from dahyf.hand import kinematics as K

    rng = np.random.default_rng(seed)
    gt = sv.load_ground_truth()
    pose = gt["pose"][rng.choice(len(gt["pose"]), n)].astype(np.float32).copy()
    turn = rng.normal(0, 0.5, (n, 3)).astype(np.float32)
    R = K.batch_rodrigues(turn) @ K.batch_rodrigues(pose[:, 0])
    pose[:, 0] = K.matrix_to_axis_angle(R)
    model = load_hand_model("open", "right")
    kp = model(pose).keypoints.astype(np.float64)                        # (n, 21, 3) m, no translation
    W, H = image_size
    pix = rng.uniform(0.25, 0.75, (n, 2)) * (W, H)
    ray = np.concatenate([(pix - (W / 2, H / 2)) / focal, np.ones((n, 1))], 1)
    joints = kp - kp.mean(1, keepdims=True) + (ray * depth)[:, None]
    return project_points(joints, focal, tuple(image_size)).astype(np.float32), (joints - joints.mean(1, keepdims=True))


def _tracks(lm, world, size, split=24):
    return [HandBatch.of(lm[:split], True, size, world_landmarks=world[:split]),
            HandBatch.of(lm[split:], False, size, world_landmarks=world[split:])]


@pytest.mark.parametrize("f_rel,depth", [(0.45, 0.25), (0.7, 0.3), (1.0, 0.45)])
def test_self_calibration_recovers_the_focal_from_exact_hand_shapes_within_its_sigma(f_rel, depth):
    size = (640, 480)
    lm, world = _hands_in_camera(size, f_rel * 800.0, depth)
    noisy = lm + np.random.default_rng(1).normal(0, 0.5, lm.shape).astype(np.float32)
    est = FC.estimate_focal(_tracks(noisy, world, size), size, depth_scales=(1.0,))   # depth trusted as exact
    assert est.source == "self-calibrated", est.note
    assert abs(est.focal_px - f_rel * 800.0) <= est.sigma_px, (est.focal_px, est.sigma_px)
    flat = _tracks(noisy, world * (1, 1, 0.5), size)       # a hand shape flattened by half misleads the fit ...
    wrong = FC.estimate_focal(flat, size, depth_scales=(1.0,))
    assert abs(wrong.detail["fit_focal_px"] - f_rel * 800.0) > 0.2 * f_rel * 800.0
    honest = FC.estimate_focal(flat, size)                  # ... which the depth-scale check does not trust
    assert honest.source == "default"
    if "rel_sigma" in honest.detail:
        assert honest.detail["rel_sigma"] > FC.MAX_SELF_SIGMA


def test_far_hands_fall_back_to_the_default_with_a_large_sigma():
    size = (640, 480)
    lm, world = _hands_in_camera(size, 1.4 * 800.0, depth=1.6)
    noisy = lm + np.random.default_rng(1).normal(0, 0.5, lm.shape).astype(np.float32)
    est = FC.estimate_focal(_tracks(noisy, world, size), size)
    assert est.source == "default"
    assert est.focal_px == pytest.approx(800.0)
    assert est.sigma_px == pytest.approx(FC.DEFAULT_SIGMA * 800.0)
    assert est.note
    few = FC.estimate_focal([HandBatch.of(lm[:5], True, size, world_landmarks=world[:5])], size)
    assert few.source == "default" and "at least" in few.note


def test_a_capture_uses_the_containers_focal_and_says_so(tmp_path):
    """The bundled sample clip with a phone's 35 mm-equivalent focal length written into it: the take
    is captured with that focal length and its meta names the source; --focal still wins."""
    import shutil

    import dahyf
    from dahyf import sample_video as sv

    clip = tmp_path / "phone_sample.mp4"
    shutil.copy(sv.SAMPLE_VIDEO, clip)
    _insert_meta(clip, _meta_box(mp4meta.KEY_FOCAL_35MM, 1, b"32.45mm"), into_track=True)
    engine = dahyf.load_engine(device="cpu")
    take = engine.capture(str(clip), hands="right", frame_range=(0, 6))
    expected = 32.45 * math.hypot(640, 480) / math.hypot(36, 24)      # = 600 px, the clip's true focal
    assert take.focal == pytest.approx(expected, rel=1e-4)
    assert take.meta["focal_source"] == "metadata"
    assert take.meta["focal_sigma_px"] == pytest.approx(FC.METADATA_SIGMA * expected, rel=1e-3)
    given = engine.capture(str(clip), hands="right", frame_range=(0, 6), focal=700.0)
    assert given.focal == 700.0 and given.meta["focal_source"] == "user"
    plain = engine.capture(str(sv.SAMPLE_VIDEO), hands="right", frame_range=(0, 6))
    assert plain.focal == pytest.approx(800.0) and plain.meta["focal_source"] == "default"
    assert plain.meta["focal_sigma_px"] == pytest.approx(FC.DEFAULT_SIGMA * 800.0)
    assert "self-calibration off" in plain.meta["focal_note"]      # opt-in: measured unreliable
    asked = engine.capture(str(sv.SAMPLE_VIDEO), hands="right", frame_range=(0, 6), self_calibrate=True)
    assert asked.meta["focal_source"] == "default" and "at least 20 are needed" in asked.meta["focal_note"]


def test_the_self_calibrations_estimator_on_a_rendered_clips_exact_joints_and_with_its_tips_moved():
    """benchmarks/focal_observability.py's cases (a) and (b) on a few frames of one clip: exact 3-D
    joints posed onto their exact projections give the true focal; fingertips moved a quarter of their
    last bone (the size of MediaPipe's convention difference) move it."""
    from dahyf.geometry import project_points
    from dahyf.hand.tables import KEYPOINT_PARENTS
    from dahyf.sample_video import clips as C

    pairs = {v.stem: g for v, g in C.clip_paths()}
    if "dark_gestures" not in pairs:
        pytest.skip("dark_gestures is not rendered (benchmarks/fidelity_clips)")
    gt = C.load_clip_gt(pairs["dark_gestures"])
    size, focal = tuple(int(v) for v in gt["image_size"]), float(gt["focal"])
    frames = np.nonzero(gt["visible"][0])[0][::4]     # 15 frames of the first hand
    g3 = gt["joints3d"][0, frames].astype(np.float64)
    uv = project_points(g3, focal, size)
    log_f = FC.search_log_focals(size)

    def fit(points):
        res = FC.pnp_residual_curve(points, g3, size, np.exp(log_f))
        assert np.isfinite(res).all()
        return math.exp(FC.pooled_minimum(res, log_f)[1])

    assert fit(uv) == pytest.approx(focal, rel=0.02)
    tips = [k for k in range(21) if k not in KEYPOINT_PARENTS]
    moved = uv.copy()
    moved[:, tips] -= 0.25 * (uv[:, tips] - uv[:, [KEYPOINT_PARENTS[t] for t in tips]])
    assert abs(fit(moved) / focal - 1) > 0.2    # 1.54 × the true focal (950 px) on this clip


def test_a_lens_in_mm_is_converted_on_the_diagonal_and_checked_in_mm():
    """``user_lens_mm`` (``--lens``): a 35 mm-equivalent focal length, the same conversion as the
    container's value; it wins like a focal in px, cannot come with one, and a lens too wide for any
    camera is refused with a message in millimetres."""
    size = (1920, 1080)
    est = FC.estimate_focal([], size, {"focal_35mm": 50.0}, user_lens_mm=26.0)
    assert est.source == "user" and est.sigma_px == 0.0
    assert est.focal_px == pytest.approx(26.0 * math.hypot(1920, 1080) / math.hypot(36, 24))
    assert est.detail == {"lens_35mm": 26.0} and "26 mm lens" in est.note
    with pytest.raises(ValueError, match="not both"):
        FC.estimate_focal([], size, user_focal=1500.0, user_lens_mm=26.0)
    with pytest.raises(ValueError, match="wider than any camera's.*24-28"):
        FC.estimate_focal([], size, user_lens_mm=0.5)
    with pytest.raises(ValueError, match="positive"):
        FC.estimate_focal([], size, user_lens_mm=float("nan"))


def test_capture_and_live_take_the_lens_and_the_cli_refuses_both(tmp_path):
    """The engine's capture and live capture use ``lens_mm`` as given (the bundled clip's true focal is
    a 32.45 mm lens); the CLI's --lens reaches the take, and --lens with --focal is refused."""
    import subprocess
    import sys

    import dahyf
    from dahyf import sample_video as sv
    from dahyf.capture.errors import CaptureError

    engine = dahyf.load_engine(device="cpu")
    take = engine.capture(str(sv.SAMPLE_VIDEO), hands="right", frame_range=(0, 4), lens_mm=32.45)
    assert take.focal == pytest.approx(600.0, rel=1e-3) and take.meta["focal_source"] == "user"
    with pytest.raises(CaptureError, match="not both"):
        engine.capture(str(sv.SAMPLE_VIDEO), hands="right", frame_range=(0, 4), lens_mm=32.45, focal=600.0)
    with pytest.raises(CaptureError, match="--lens: .*wider than any camera's"):
        engine.capture(str(sv.SAMPLE_VIDEO), hands="right", frame_range=(0, 4), lens_mm=1.0)
    live = engine.live(str(sv.SAMPLE_VIDEO), hands="right", lens_mm=32.45)
    try:
        assert live.focal_px == pytest.approx(600.0, rel=1e-3)
        assert live.focal_meta["focal_source"] == "user"
    finally:
        live.source.stop()
    out = tmp_path / "t.npz"
    cli = [sys.executable, "-m", "dahyf", "capture", str(sv.SAMPLE_VIDEO), "--hands", "right", "--frames", "0:4",
           "--quiet", "-o", str(out)]
    run = subprocess.run(cli + ["--lens", "32.45"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert dahyf.Take.load(out).meta["focal_note"].startswith("32.45 mm lens")
    assert "guessed focal length" not in run.stdout
    guess = subprocess.run(cli + ["--force"], capture_output=True, text=True)
    assert guess.returncode == 0, guess.stderr
    assert "rests on a guessed focal length (800 px, ±40 %)" in guess.stdout and "--lens MM" in guess.stdout
    both = subprocess.run(cli + ["--lens", "26", "--focal", "700", "--force"], capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
