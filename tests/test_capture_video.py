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


@pytest.fixture(scope="module")
def sample_frames():
    """3 frames of the bundled sample clip (a right hand on a plain background), 320x240."""
    from dahyf.sample_video import SAMPLE_VIDEO
    from test_capture_media import read_frames

    return read_frames(SAMPLE_VIDEO, 60, 3, (320, 240))


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_turns_the_picture_itself_upright(sample_frames, tmp_path, degrees):
    """Not only the frame shape: each decoded frame is the stored one turned by the metadata's angle
    (clockwise), and clearly not by another angle (180° keeps the shape, so only the content tells)."""
    import cv2

    turns = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    src = write_clip(tmp_path / "upright.mp4", sample_frames)
    r = VideoReader(rotated_copy(src, tmp_path / f"rot{degrees}.mp4", degrees))
    assert r.info.rotation == degrees
    frames = [f.image for f in r]
    assert len(frames) == len(sample_frames)
    for stored, got in zip(sample_frames, frames):
        err = {}
        for angle, code in turns.items():
            want = stored if code is None else cv2.rotate(stored, code)
            if want.shape == got.shape:
                err[angle] = np.abs(want.astype(int) - got).mean()
        assert min(err, key=err.get) == degrees, err
        assert err[degrees] < 4.0 and all(e > 3 * err[degrees] for a, e in err.items() if a != degrees), err


def test_decoder_threads_are_capped_by_the_bytes_of_frames_in_flight():
    from dahyf.capture.video import DECODER_THREADS_MAX, decoder_threads

    assert decoder_threads(7680, 4320, 64) == 5            # 8K: 512 MiB of BGR frames
    assert decoder_threads(3840, 2160, 64) == DECODER_THREADS_MAX
    assert decoder_threads(640, 480, 2) == 2               # one per core below the caps
    assert decoder_threads(100_000, 100_000, 8) == 1       # never 0


def test_a_large_video_is_opened_with_fewer_decoding_threads_than_cores(hand_clip, monkeypatch):
    """On a many-core machine the reader asks FFmpeg for the capped thread count (here the cap is
    lowered to three of the clip's frames so that the small test clip stands in for an 8K one)."""
    import cv2

    from dahyf.capture import video

    cap = video._open_capture(str(hand_clip))
    w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    cap.release()
    monkeypatch.setattr(video.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(video, "DECODER_THREADS_BYTES", int(w * h * 3 * 3))
    cap = video._open_capture(str(hand_clip))
    try:
        assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_N_THREADS)) == 3
        ok, frame = cap.read()
        assert ok and frame.shape[:2] == (h, w)
    finally:
        cap.release()
