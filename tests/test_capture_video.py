"""The video decoder: real timestamps, frame ranges, rotation metadata, and bad files."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf.capture.errors import CaptureError
from dahyf.capture.video import VideoReader, open_video
from test_capture_media import (VFR_DURATIONS, hand_clip, hand_frames, rotated_copy,  # noqa: F401
                                vfr_copy, write_clip)


def test_real_video_frames_and_timestamps(shared_video):
    r = open_video(shared_video, (100, 110))
    assert (r.info.width, r.info.height, r.info.fps, r.info.frame_count) == (1280, 720, 30.0, 500)
    frames = list(r)
    assert [f.index for f in frames] == list(range(100, 110))
    np.testing.assert_allclose([f.time_s for f in frames], np.arange(100, 110) / 30.0, atol=1e-3)
    assert frames[0].image.shape == (720, 1280, 3)


def test_frame_range_past_the_end_is_an_error(hand_clip):
    with pytest.raises(CaptureError, match="only 40 frames"):
        open_video(hand_clip, (50, 60))
    with pytest.raises(CaptureError, match="Invalid frame range"):
        open_video(hand_clip, (10, 5))


def test_missing_file(tmp_path):
    with pytest.raises(CaptureError, match="not found"):
        open_video(tmp_path / "nope.mp4")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(CaptureError, match="is a folder"):
        open_video(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty"):
        open_video(p)


def test_non_video_file(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("these are my notes, not a video\n" * 50)
    with pytest.raises(CaptureError, match="not a video|no frame could be decoded"):
        open_video(p)


def test_corrupt_video(hand_clip, tmp_path):
    # keep the container header, replace everything after it with noise
    data = bytearray(hand_clip.read_bytes())
    rng = np.random.default_rng(0)
    data[48:] = rng.integers(0, 256, len(data) - 48, dtype=np.uint8).tobytes()
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match="not a video|no frame could be decoded"):
        open_video(p)


def test_truncated_video_decodes_what_is_there(hand_clip, tmp_path):
    data = hand_clip.read_bytes()
    p = tmp_path / "truncated.mp4"
    p.write_bytes(data[: len(data) // 2])   # moov (at the end) is lost: not decodable
    with pytest.raises(CaptureError):
        open_video(p)


def test_one_frame_video(hand_frames, tmp_path):
    p = write_clip(tmp_path / "one.mp4", hand_frames[:1])
    frames = list(open_video(p))
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].time_s == 0.0


def test_rotation_metadata_gives_upright_portrait_frames(hand_frames, tmp_path):
    src = write_clip(tmp_path / "land.mp4", hand_frames[:5])
    rot = rotated_copy(src, tmp_path / "portrait.mp4", 90)
    r = VideoReader(rot)
    assert (r.info.width, r.info.height, r.info.rotation) == (360, 640, 90)
    frames = list(r)
    assert len(frames) == 5 and all(f.image.shape == (640, 360, 3) for f in frames)


def test_variable_frame_rate_keeps_real_timestamps(hand_frames, tmp_path):
    src = write_clip(tmp_path / "cfr.mp4", hand_frames[:10])
    vfr = vfr_copy(src, tmp_path / "vfr.mp4", VFR_DURATIONS)
    times = [f.time_s for f in open_video(vfr)]
    np.testing.assert_allclose(times, np.concatenate([[0], np.cumsum(VFR_DURATIONS)[:-1]]), atol=1e-3)
