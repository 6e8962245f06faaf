"""Take format: round trip, sidecar, per-track access, atomic save, no pickles."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dahyf.capture.errors import CaptureError
from dahyf.capture.pipeline import Chunk
from dahyf.capture.take import ROW_FIELDS, Take


def _rows(track, frames, seed):
    rng = np.random.default_rng(seed)
    n = len(frames)
    rows = {k: rng.normal(size=(n,) + shape).astype(dt) if dt.startswith("float") else None
            for k, (shape, dt) in ROW_FIELDS.items()}
    rows["track"] = np.full(n, track, np.int32)
    rows["frame"] = np.asarray(frames, np.int64)
    rows["time_s"] = rows["frame"] / 30.0
    rows["filled"] = rng.random(n) < 0.2
    return rows


def _chunk(rows_list, done, final=False):
    from dahyf.capture.take import concat_rows
    return Chunk(concat_rows(rows_list), done, 100, 30.0, (640, 480), 800.0, ("right", "left"),
                 meta={"source": "x.mp4"}, final=final)


def _take():
    chunks = [_chunk([_rows(0, range(0, 10), 0), _rows(1, range(5, 10), 1)], 10),
              _chunk([_rows(0, range(10, 20), 2)], 20, final=True)]
    return Take.from_chunks(chunks, meta={"threshold": 0.5})


def test_from_chunks_orders_rows_and_splits_tracks():
    take = _take()
    assert len(take) == 25 and take.num_tracks == 2
    assert np.all(np.diff(take.frame) >= 0)
    right, left = take.tracks()
    assert right.handedness == "right" and len(right) == 20 and left.handedness == "left" and len(left) == 5
    assert take.track_for("left").frame.tolist() == list(range(5, 10))
    assert take.meta["complete"] and take.meta["frames_done"] == 20 and take.meta["source"] == "x.mp4"


def test_save_load_round_trip_and_sidecar(tmp_path):
    take = _take()
    path = take.save(tmp_path / "take.npz")
    back = Take.load(path)
    for k in ROW_FIELDS:
        np.testing.assert_array_equal(back.rows[k], take.rows[k].astype(ROW_FIELDS[k][1]))
        assert back.rows[k].dtype == np.dtype(ROW_FIELDS[k][1])
    assert (back.fps, back.image_size, back.focal, back.handedness) == (30.0, (640, 480), 800.0, ("right", "left"))
    assert back.meta == take.meta
    side = json.loads((tmp_path / "take.json").read_text())
    assert side["format"] == "dahyf-take" and side["rows"] == 25
    assert [t["rows"] for t in side["tracks"]] == [20, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.json", "take.npz"]


def test_failed_save_leaves_nothing_behind(tmp_path):
    (tmp_path / "take.json").mkdir()          # the sidecar's name is taken by a folder: rename fails
    with pytest.raises(CaptureError, match="Could not write"):
        _take().save(tmp_path / "take.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.json"]
    with pytest.raises(CaptureError, match="does not exist"):
        _take().save(tmp_path / "missing" / "take.npz")


def test_load_refuses_pickles_and_foreign_files(tmp_path):
    take = _take()
    arrays = {k: v for k, v in take.rows.items()}
    arrays.update(fps=30.0, image_size=[640, 480], focal=800.0, format_version=1,
                  handedness=np.array([{"evil": 1}], dtype=object), meta_json="{}")
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(CaptureError, match="not a readable dahyf take"):
        Take.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CaptureError, match="version 0"):
        Take.load(tmp_path / "other.npz")
    with pytest.raises(CaptureError, match="not found"):
        Take.load(tmp_path / "nothing.npz")
    good = take.save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])  # starts with PK, cut short
    with pytest.raises(CaptureError, match="not a readable dahyf take"):
        Take.load(tmp_path / "truncated.npz")


def test_saved_take_is_0644_under_umask_022(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = _take().save(tmp_path / "take.npz")
    finally:
        os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "take.json").stat().st_mode & 0o777) == 0o644


def test_saved_take_has_ordinary_file_permissions(tmp_path):
    import os
    import stat

    path = _take().save(tmp_path / "take.npz")
    mask = os.umask(0o022)
    os.umask(mask)
    for p in (path, path.with_suffix(".json")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
