"""Take format: round trip, sidecar, per-track access, atomic save, no pickles."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

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
    rows["confidence"] = rng.random(n).astype(np.float32)
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
    with pytest.raises(CaptureError, match="'handedness' has dtype object"):
        Take.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CaptureError, match="version 0"):
        Take.load(tmp_path / "other.npz")
    with pytest.raises(CaptureError, match="not found"):
        Take.load(tmp_path / "nothing.npz")
    good = take.save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])  # starts with PK, cut short
    with pytest.raises(CaptureError, match="truncated.npz is damaged .* not a readable dahyf take"):
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


# --- hostile and broken takes (issue 13 §3): refused with a message, before anything big is read ---
def _save_raw(path, take, **override):
    """Write ``take`` as Take.save does, with arrays replaced by ``override`` (no validation)."""
    arrays = {k: v for k, v in take.rows.items()}
    arrays.update(fps=np.float64(take.fps), image_size=np.asarray(take.image_size, np.int32),
                  focal=np.float64(take.focal), handedness=np.asarray(take.handedness, "<U5"),
                  format_version=np.int32(1), meta_json=np.asarray(json.dumps(take.meta)))
    arrays.update(override)
    np.savez_compressed(path, **arrays)
    return path


def _with_row(take, field, index, value):
    a = take.rows[field].copy()
    a[index] = value
    return a


@pytest.mark.parametrize("case, match", [
    ("nan_pose", "'pose' holds NaN"),
    ("inf_transl", "'transl' holds NaN or infinite"),
    ("fps_zero", "fps is 0.0"),
    ("fps_negative", "fps is -30.0"),
    ("fps_huge", "fps is 1000000000.0"),
    ("image_size_zero", "image_size is \\(0, 480\\)"),
    ("focal_zero", "focal is 0.0"),
    ("frame_huge", "'frame' holds 1099511627776"),
    ("frame_negative", "'frame' holds -1099511627776"),
    ("pose_bool", "'pose' holds bool"),
    ("pose_complex", "'pose' holds complex"),
    ("pose_str", "'pose' holds <U"),
    ("pose_huge_angle", "'pose' holds .* joint rotation"),
    ("filled_float", "'filled' holds float"),
    ("track_missing", "'track' holds 5"),
    ("handedness_bad", "handedness is \\['right', 'middle'\\]"),
    ("meta_not_object", "metadata is a JSON list"),
    ("meta_nested", "unreadable metadata \\(RecursionError\\)"),
    ("meta_nan", "unreadable metadata|fps"),
    ("missing_field", "missing landmarks2d"),
    ("confidence_out_of_range", "'confidence' holds 7.0"),
])
def test_load_refuses_broken_takes_with_a_message(tmp_path, case, match):
    take = _take()
    o = {
        "nan_pose": {"pose": _with_row(take, "pose", 3, np.nan)},
        "inf_transl": {"transl": _with_row(take, "transl", 0, np.inf)},
        "fps_zero": {"fps": np.float64(0)},
        "fps_negative": {"fps": np.float64(-30)},
        "fps_huge": {"fps": np.float64(1e9)},
        "image_size_zero": {"image_size": np.array([0, 480], np.int32)},
        "focal_zero": {"focal": np.float64(0)},
        "frame_huge": {"frame": _with_row(take, "frame", 2, 2**40)},
        "frame_negative": {"frame": _with_row(take, "frame", 2, -2**40)},
        "pose_bool": {"pose": take.rows["pose"] > 0},
        "pose_complex": {"pose": take.rows["pose"].astype(np.complex64)},
        "pose_str": {"pose": take.rows["pose"].astype(str)},
        "pose_huge_angle": {"pose": _with_row(take, "pose", 1, 1e6)},
        "filled_float": {"filled": take.rows["filled"].astype(np.float32)},
        "track_missing": {"track": _with_row(take, "track", 0, 5)},
        "handedness_bad": {"handedness": np.array(["right", "middle"])},
        "meta_not_object": {"meta_json": np.asarray("[1, 2]")},
        "meta_nested": {"meta_json": np.asarray("[" * 100_000 + "]" * 100_000)},
        "meta_nan": {"meta_json": np.asarray('{"x": NaN, "source": [}')},
        "missing_field": {},
        "confidence_out_of_range": {"confidence": _with_row(take, "confidence", 0, 7.0)},
    }[case]
    path = _save_raw(tmp_path / "bad.npz", take, **o)
    if case == "missing_field":
        with np.load(path) as z:
            np.savez(path, **{k: z[k] for k in z.files if k != "landmarks2d"})
    with pytest.raises(CaptureError, match=match) as info:
        Take.load(path)
    assert "bad.npz" in str(info.value)


def test_decompression_bomb_refused_from_the_zip_header(tmp_path, monkeypatch):
    """A 4 MB take whose pose member decompresses to 4.4 GB: refused before any member is opened."""
    import zipfile

    from hostile_files import npz_bomb

    take = _take()
    path = tmp_path / "bomb.npz"
    small = {k: v for k, v in take.rows.items() if k != "pose"}
    small.update(fps=np.float64(30), image_size=np.array([640, 480], np.int32), focal=np.float64(800),
                 handedness=np.array(["right", "left"]), format_version=np.int32(1), meta_json=np.asarray("{}"))
    npz_bomb(path, small, "pose", int(4.4e9))
    assert path.stat().st_size < 5e6
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: opened.append(name) or real_open(self, name, *a, **k))
    with pytest.raises(CaptureError, match=r"bomb.npz would decompress to 4192 MiB, more than the 512 MiB allowed"):
        Take.load(path)
    assert opened == []


def test_lying_npy_header_refused_before_allocating(tmp_path):
    """A member whose .npy header declares 2**40 rows but holds a few bytes: refused, nothing allocated."""
    import zipfile

    take = _take()
    path = _save_raw(tmp_path / "liar.npz", take)
    with zipfile.ZipFile(path, "a") as zf:
        with zf.open("extra.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
            fh.write(b"\0" * 64)
    with pytest.raises(CaptureError, match="declares shape"):
        Take.load(path)


@pytest.mark.parametrize("source, name", [
    ("clip.mp4", "clip.mp4"),
    ("/etc/passwd", "passwd"),
    ("\\\\evil-host\\share\\clip.mp4", "clip.mp4"),
    ("C:clip.mp4", ""),
    ("..", ""),
    ("clip\n.mp4", ""),
    (["clip.mp4"], ""),
    (None, ""),
])
def test_source_is_a_file_name_never_a_path(source, name):
    take = _take()
    take.meta["source"] = source
    assert take.source_name == name


# --- writes (issue 13 §4) ----------------------------------------------------------------------
def test_npz_is_renamed_into_place_before_the_sidecar(tmp_path, monkeypatch):
    import os

    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renamed.append(os.path.basename(b)) or real(a, b))
    _take().save(tmp_path / "take.npz")
    assert renamed == ["take.npz", "take.json"]


def test_a_failed_npz_write_leaves_the_old_take_and_sidecar(tmp_path, monkeypatch):
    take = _take()
    path = take.save(tmp_path / "take.npz")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(np, "savez_compressed", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(CaptureError, match="No space left"):
        take.save(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    take = _take()
    (tmp_path / "take.json").write_text("my notes, not a take")
    with pytest.raises(CaptureError, match="take.json already exists"):
        take.save(tmp_path / "take.npz", overwrite=False)
    assert (tmp_path / "take.json").read_text() == "my notes, not a take"
    assert not (tmp_path / "take.npz").exists()
    take.save(tmp_path / "take.npz", overwrite=True)
    assert json.loads((tmp_path / "take.json").read_text())["format"] == "dahyf-take"


def test_save_validates_first_and_writes_no_nan(tmp_path):
    take = _take()
    take.rows["pose"][0, 0, 0] = np.nan
    with pytest.raises(CaptureError, match="NaN"):
        take.save(tmp_path / "take.npz")
    take = _take()
    take.meta["score"] = float("nan")
    with pytest.raises(CaptureError, match="not plain JSON"):
        take.save(tmp_path / "take.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_second_writer_is_refused_while_the_first_holds_the_take(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "take.npz"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dahyf.fileio import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CaptureError, match="being written by another dahyf process"):
            _take().save(path)
        assert not path.exists()
    finally:
        holder.kill()
        holder.wait()
    _take().save(path)   # the lock died with its holder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.json", "take.npz"]


def test_sigterm_during_save_leaves_no_partial_files(tmp_path):
    import signal
    import subprocess
    import sys

    child = textwrap.dedent("""
        import sys, time
        import numpy as np
        sys.path.insert(0, sys.argv[2])
        from test_capture_take import _take
        real = np.savez_compressed
        def slow(fh, **arrays):
            real(fh, **arrays)
            print("writing", flush=True)
            time.sleep(60)
        np.savez_compressed = slow
        _take().save(sys.argv[1])
    """)
    p = subprocess.Popen([sys.executable, "-c", child, str(tmp_path / "take.npz"), str(Path(__file__).parent)],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "writing"
        assert any(".partial" in f.name for f in tmp_path.iterdir())
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == -signal.SIGTERM
    finally:
        p.kill()
    assert list(tmp_path.iterdir()) == []
