"""The bundled hand_landmarker.task: MediaPipe 0.10.21's own models, rebuilt byte for byte, and the
Tasks landmarker on it gives the landmarks of the legacy ``solutions.hands`` on the sample clip."""
from __future__ import annotations

import hashlib
import zipfile

import cv2
import numpy as np
import pytest

from dahyf.assets import HAND_LANDMARKER_TASK
from dahyf.assets import landmarker_task as lt
from dahyf.capture.tracking import HandDetector

mp = pytest.importorskip("mediapipe")
#: mediapipe 0.10.21 is in the Python 3.11 tier only: later releases have neither models nor solutions.hands.
HAS_LEGACY = mp.__version__ == "0.10.21" and hasattr(mp, "solutions")
needs_legacy = pytest.mark.skipif(not HAS_LEGACY, reason=f"needs mediapipe 0.10.21 (the Python 3.11 tier), "
                                                          f"this is {mp.__version__}: no solutions.hands, no model files")


def sample_frames():
    from dahyf import sample_video as sv

    cap = cv2.VideoCapture(str(sv.SAMPLE_VIDEO))
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    cap.release()


def test_shipped_bundle_is_the_pinned_build():
    data = HAND_LANDMARKER_TASK.read_bytes()
    assert hashlib.sha256(data).hexdigest() == lt.BUNDLE_SHA256
    with zipfile.ZipFile(HAND_LANDMARKER_TASK) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == [name for name, _ in lt.BUNDLE_MEMBERS]
    assert all(i.compress_type == zipfile.ZIP_STORED and i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert (HAND_LANDMARKER_TASK.parent / "hand_landmarker.NOTICE.md").is_file()
    assert "Apache License" in (HAND_LANDMARKER_TASK.parent / "hand_landmarker.LICENSE").read_text()


@needs_legacy
def test_bundle_rebuilds_byte_for_byte_from_the_installed_mediapipe_0_10_21():
    models = lt.models_from_installed()
    assert models is not None
    assert lt.pack(models) == HAND_LANDMARKER_TASK.read_bytes()
    assert lt.pack(dict(reversed(list(models.items())))) == HAND_LANDMARKER_TASK.read_bytes()  # order is fixed


def test_a_wheel_other_than_the_pinned_one_is_refused(tmp_path):
    fake = tmp_path / lt.SOURCE_WHEEL
    with zipfile.ZipFile(fake, "w") as zf:
        for _, member in lt.BUNDLE_MEMBERS:
            zf.writestr(member, b"not a model")
    with pytest.raises(ValueError, match="expected 05dc4a9e"):
        lt.models_from_wheel(fake)


@needs_legacy
@pytest.mark.slow
def test_tasks_landmarks_equal_the_legacy_solution_on_the_sample_clip():
    legacy = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1,
                                      min_detection_confidence=0.5, min_tracking_confidence=0.5)
    dist2d, dist3d, same_side, frames = [], [], [], 0
    with HandDetector() as det, legacy:
        for i, rgb in enumerate(sample_frames()):
            h, w = rgb.shape[:2]
            ours, res = det.detect(rgb, 1000.0 * i / 30.0), legacy.process(rgb)
            theirs = list(zip(res.multi_hand_landmarks or [], res.multi_handedness or [],
                              res.multi_hand_world_landmarks or []))
            assert len(ours) == len(theirs), f"frame {i}: {len(ours)} hands, legacy {len(theirs)}"
            for lms, handed, world in theirs:
                ref = np.array([(p.x * w, p.y * h) for p in lms.landmark])
                d = min(ours, key=lambda d: np.linalg.norm(d.centre - ref.mean(0)))
                dist2d.append(np.linalg.norm(d.landmarks - ref, axis=1).mean() / max(w, h))
                ref_w = np.array([(p.x, p.y, p.z) for p in world.landmark])
                dist3d.append(np.linalg.norm(d.world_landmarks - ref_w, axis=1).mean())
                # the legacy label assumed a mirrored image: its "Left" is the person's right hand
                same_side.append(d.side == {"Left": "right", "Right": "left"}[handed.classification[0].label])
            frames += 1
    dist2d, dist3d = np.array(dist2d), np.array(dist3d)
    assert frames == 210 and len(dist2d) == 210
    # measured: mean 0.05 %, p90 0.13 % of the image size; world landmarks 0.7 mm median
    assert dist2d.mean() <= 0.002 and np.percentile(dist2d, 90) <= 0.002, (dist2d.mean(), np.percentile(dist2d, 90))
    assert np.median(dist3d) <= 0.002, np.median(dist3d)
    assert np.mean(same_side) >= 0.95


def test_new_hand_gets_a_second_look_and_its_own_side_on_the_first_frame():
    # The sample clip shows a right hand throughout. From the palm box alone, MediaPipe labels the
    # first frame "Left" (0.88); the second look (a box fitted to the landmarks) labels it "Right".
    from dahyf.capture.tracking import HandTracker

    tracker, sides = HandTracker(), []
    with HandDetector() as det:
        for i, rgb in zip(range(10), sample_frames()):
            found = det.detect(rgb, 1000.0 * i / 30.0)
            assert len(found) == 1
            if i == 0:
                assert found[0].side == "right" and found[0].side_score > 0.7
            sides += list(tracker.update(i, found))
    assert sides == ["right"] * 10


def test_detection_carries_world_landmarks_depth_and_handedness_score():
    with HandDetector(max_hands=1) as det:
        rgb = next(sample_frames())
        (d,) = det.detect(rgb, 0.0)
    assert d.landmarks.shape == (21, 2) and d.world_landmarks.shape == (21, 3) and d.depth.shape == (21,)
    # metric, hand-centred: a hand spans 10–25 cm and its centre sits near the origin
    span = np.ptp(d.world_landmarks, axis=0).max()
    assert 0.08 < span < 0.25 and np.abs(d.world_landmarks.mean(0)).max() < 0.05
    assert abs(d.depth[0]) < 1.0 and np.all(np.isfinite(d.depth))   # wrist is the depth origin
    assert 0.5 <= d.side_score <= 1.0 and d.right_score == pytest.approx(d.side_score if d.side == "right"
                                                                        else 1 - d.side_score)


def test_timestamps_that_do_not_increase_are_moved_forward():
    frames = list(zip(range(4), sample_frames()))
    with HandDetector() as det:
        counts = [len(det.detect(rgb, ts)) for (_, rgb), ts in zip(frames, (100.0, 100.0, 50.0, None))]
        assert det._last_ms > 100
    assert counts == [1, 1, 1, 1]


def test_image_mode_and_bad_settings():
    from dahyf.capture.errors import CaptureError

    with HandDetector(max_hands=1, mode="image") as det:
        rgb = next(sample_frames())
        assert len(det.detect(rgb)) == 1 and len(det.detect(rgb)) == 1
    with pytest.raises(CaptureError, match="mode must be one of video, image"):
        HandDetector(mode="live")
    with pytest.raises(CaptureError, match="Cannot read the hand landmarker model"):
        HandDetector(model_path="/nonexistent/hand_landmarker.task")
