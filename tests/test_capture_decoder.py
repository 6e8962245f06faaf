"""The capture decoder's read-ahead is bounded in bytes, and frames die once detection is done (issue 13 §6)."""
from __future__ import annotations

import weakref

from dahyf.assets import SAMPLE_VIDEO as SAMPLE
from dahyf.capture import pipeline
from dahyf.capture.video import VideoReader, frames_within



def test_frames_within_a_byte_budget():
    budget = pipeline.DECODE_AHEAD_BYTES
    assert frames_within(budget, (7680, 4320), 64) == 1       # 8K: 99.5 MB a frame
    assert frames_within(budget, (3840, 2160), 64) == 5
    assert frames_within(budget, (1920, 1080), 64) == 21
    assert frames_within(budget, (640, 480), 64) == 64        # small frames: the frame count bounds it
    assert frames_within(1, (16384, 16384), 64) == 1          # never less than one frame


class _CountingSource:
    """A VideoReader that counts its decoded frames still alive (referenced anywhere) at each new frame."""

    def __init__(self, path, frame_range):
        self.reader = VideoReader(path, frame_range)
        self.info, self.frames_total, self.ended_early = self.reader.info, self.reader.frames_total, False
        self.alive = 0
        self.max_alive = 0

    def _died(self):
        self.alive -= 1

    def __iter__(self):
        for frame in self.reader:
            self.alive += 1
            self.max_alive = max(self.max_alive, self.alive)
            weakref.finalize(frame.image, self._died)
            yield frame

    def close(self):
        self.reader.close()


def test_decoded_frames_in_memory_are_bounded_by_the_byte_budget(monkeypatch):
    from dahyf.capture.engine import load_engine

    frame_bytes = 640 * 480 * 3
    monkeypatch.setattr(pipeline, "DECODE_AHEAD_BYTES", 3 * frame_bytes)   # three frames of the sample clip
    source = _CountingSource(SAMPLE, (0, 48))
    engine = load_engine(device="cpu")
    rows = sum(len(c) for c in engine.stream(source, hands="right", chunk_frames=16))
    assert rows > 0
    # 3 queued + the one being detected + the one the decoder holds while the queue is full;
    # a frame-count bound (2 chunks = 32 frames) would let nearly all 48 live at once
    assert source.max_alive <= 6, source.max_alive
