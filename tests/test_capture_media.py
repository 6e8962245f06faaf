"""Test media made on the fly: short real clips, rotated (metadata) and variable-frame-rate MP4s.

The MP4 edits rewrite boxes of a file OpenCV's writer made (moov after mdat, so chunk offsets
stay valid): the track header matrix (rotation, ISO/IEC 14496-12 tkhd) and the sample durations
(stts). The tests here check that OpenCV reads the edits back as intended.
"""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}

def _boxes(data, start, end):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]; hdr = 16
        elif size == 0:
            size = end - pos
        yield pos, size, hdr, kind
        pos += size

def find_path(data, path):
    """[(pos,size,hdr)] of each box along path, e.g. [b'moov', b'trak', b'tkhd']."""
    chain, start, end = [], 0, len(data)
    for name in path:
        for pos, size, hdr, kind in _boxes(data, start, end):
            if kind == name:
                chain.append((pos, size, hdr)); start, end = pos + hdr, pos + size
                break
        else:
            raise KeyError(name)
    return chain

def set_rotation(data: bytearray, degrees: int) -> bytearray:
    pos, size, hdr = find_path(data, [b"moov", b"trak", b"tkhd"])[-1]
    version = data[pos + hdr]
    off = pos + hdr + 4 + (32 if version == 1 else 20) + 8 + 8  # times/ids/duration, reserved, layer..volume..reserved
    one, w = 1 << 16, 1 << 30
    c, s = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    width, height = struct.unpack(">II", data[off + 36: off + 44])
    width >>= 16; height >>= 16
    tx = {0: 0, 90: height, 180: width, 270: 0}[degrees]
    ty = {0: 0, 90: 0, 180: height, 270: width}[degrees]
    m = [c * one, s * one, 0, -s * one, c * one, 0, tx * one, ty * one, w]
    data[off:off + 36] = struct.pack(">9i", *m)
    return data

def set_sample_durations(data: bytearray, ticks: list) -> bytearray:
    chain = find_path(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stts"])
    pos, size, hdr = chain[-1]
    body = struct.pack(">I", 0) + struct.pack(">I", len(ticks)) + b"".join(struct.pack(">II", 1, t) for t in ticks)
    new = struct.pack(">I4s", 8 + len(body), b"stts") + body
    delta = len(new) - size
    moov_pos = chain[0][0]
    # moov must come after mdat for chunk offsets to stay valid
    mdat = [p for p, s_, h, k in _boxes(data, 0, len(data)) if k == b"mdat"]
    assert mdat and mdat[0] < moov_pos, "moov before mdat: offsets would shift"
    data[pos:pos + size] = new
    for p, s_, h in chain[:-1]:
        assert h == 8
        struct.pack_into(">I", data, p, s_ + delta)
    return data

def timescale(data):
    pos, size, hdr = find_path(data, [b"moov", b"trak", b"mdia", b"mdhd"])[-1]
    version = data[pos + hdr]
    off = pos + hdr + 4 + (16 if version == 1 else 8)
    return struct.unpack(">I", data[off:off + 4])[0]


def write_clip(path, frames, fps: float = 30.0) -> Path:
    """Write BGR frames (H, W, 3) uint8 to an .mp4 (mp4v) with OpenCV."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return Path(path)


def read_frames(video, start: int, count: int, size=None) -> list[np.ndarray]:
    """``count`` frames from ``start`` of a real video, optionally resized to (W, H)."""
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = []
    for _ in range(count):
        ok, f = cap.read()
        assert ok
        out.append(cv2.resize(f, size, interpolation=cv2.INTER_AREA) if size else f)
    cap.release()
    return out


def rotated_copy(src, dst, degrees: int) -> Path:
    data = set_rotation(bytearray(Path(src).read_bytes()), degrees)
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def vfr_copy(src, dst, durations_s) -> Path:
    """Copy with per-frame durations (s); keep their sum equal to the original length (edit list)."""
    data = bytearray(Path(src).read_bytes())
    ts = timescale(data)
    Path(dst).write_bytes(bytes(set_sample_durations(data, [int(round(d * ts)) for d in durations_s])))
    return Path(dst)


#: Frame durations (s) summing to 10 frames at 30 fps, unevenly.
VFR_DURATIONS = [1 / 30, 2 / 30, 1 / 60, 1 / 60, 1 / 30, 2 / 30, 1 / 60, 1 / 60, 1 / 30, 1 / 30]


@pytest.fixture(scope="session")
def hand_frames(shared_video):
    """40 real frames with both hands visible, 640x360 (frames 30..69 of the shared video)."""
    return read_frames(shared_video, 30, 40, (640, 360))


@pytest.fixture(scope="session")
def hand_clip(hand_frames, tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "hands.mp4", hand_frames)


def test_rotation_metadata_is_read_back_by_opencv(hand_frames, tmp_path):
    src = write_clip(tmp_path / "a.mp4", hand_frames[:3])
    rot = rotated_copy(src, tmp_path / "rot.mp4", 90)
    cap = cv2.VideoCapture(str(rot), cv2.CAP_FFMPEG)
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    assert cap.get(cv2.CAP_PROP_ORIENTATION_META) == 90
    ok, f = cap.read()
    assert ok and f.shape[:2] == (640, 360)
    # decoded upright = the stored frame turned 90 degrees clockwise (mp4v is lossy: compare loosely)
    cw = np.abs(cv2.rotate(hand_frames[0], cv2.ROTATE_90_CLOCKWISE).astype(int) - f).mean()
    ccw = np.abs(cv2.rotate(hand_frames[0], cv2.ROTATE_90_COUNTERCLOCKWISE).astype(int) - f).mean()
    assert cw < 5 < ccw


def test_variable_frame_rate_copy_has_uneven_timestamps(hand_frames, tmp_path):
    src = write_clip(tmp_path / "a.mp4", hand_frames[:10])
    vfr = vfr_copy(src, tmp_path / "vfr.mp4", VFR_DURATIONS)
    cap = cv2.VideoCapture(str(vfr), cv2.CAP_FFMPEG)
    times = []
    while cap.read()[0]:
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    assert len(times) == 10
    np.testing.assert_allclose(times, np.concatenate([[0], np.cumsum(VFR_DURATIONS)[:-1]]), atol=1e-3)
