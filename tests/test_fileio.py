"""dahyf.fileio: atomic writes, the output lock, output checks and bounded .npz reads."""
from __future__ import annotations

import os
import stat
import threading
import zipfile

import numpy as np
import pytest

from dahyf.errors import DaHyFUserError
from dahyf.fileio import (
    OutputBusyError, OutputExistsError, UnsafeFileError, atomic_path, atomic_write, atomic_write_text,
    check_output, lock_path, output_lock, read_npz,
)


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]
    atomic_write_text(path, "new")
    assert path.read_text() == "new"


def test_atomic_path_keeps_the_extension_and_gives_ordinary_permissions(tmp_path):
    with atomic_path(tmp_path / "video.mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".video.") and tmp.name.endswith(".partial.mp4")
        tmp.write_bytes(b"x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "video.mp4").stat().st_mode) == 0o666 & ~mask


def test_atomic_write_without_overwrite(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "mine")
    with pytest.raises(OutputExistsError):
        atomic_write_text(path, "theirs", overwrite=False)
    assert path.read_text() == "mine" and os.listdir(tmp_path) == ["f.txt"]


def test_output_lock_is_reentrant_in_its_thread_and_busy_elsewhere(tmp_path):
    path = tmp_path / "take.npz"
    seen = []
    with output_lock(path):
        with output_lock(path):               # the same thread: re-entered (CLI lock, then Take.save)
            assert lock_path(path).exists()

        def other():
            try:
                with output_lock(path):
                    seen.append("got it")
            except OutputBusyError as exc:
                seen.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert lock_path(path).exists()
    assert "another capture in this program" in seen[0]
    assert not lock_path(path).exists()      # removed when the outermost block ends
    with output_lock(path):
        pass


def test_check_output(tmp_path):
    assert check_output(tmp_path / "new.npz") == tmp_path / "new.npz"
    (tmp_path / "old.npz").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="--force"):
        check_output(tmp_path / "old.npz")
    check_output(tmp_path / "old.npz", overwrite=True)
    with pytest.raises(DaHyFUserError, match="does not exist"):
        check_output(tmp_path / "nope" / "x.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(DaHyFUserError, match="is a folder"):
        check_output(tmp_path / "dir.npz", overwrite=True)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_check_output_tries_a_write_instead_of_trusting_permission_bits(tmp_path):
    with pytest.raises(DaHyFUserError, match="Cannot write the take /proc/x.npz"):
        check_output("/proc/x.npz", what="take")   # root passes os.access, the write still fails


def test_read_npz_reads_plain_arrays(tmp_path):
    a = {"x": np.arange(5.0), "s": np.array(["right", "left"]), "b": np.array([True]), "m": np.array(3)}
    np.savez_compressed(tmp_path / "a.npz", **a)
    got = read_npz(tmp_path / "a.npz", 2**20)
    assert set(got) == set(a)
    for k in a:
        np.testing.assert_array_equal(got[k], a[k])
    assert set(read_npz(tmp_path / "a.npz", 2**20, names=("x",))) == {"x"}


@pytest.mark.parametrize("case, match", [
    ("too_big", "would decompress to"),
    ("object", "dtype object"),
    ("structured", "dtype"),
    ("not_npy", "not an array"),
    ("short", "declares shape"),
])
def test_read_npz_refuses_before_reading(tmp_path, case, match):
    path = tmp_path / "f.npz"
    if case == "too_big":
        np.savez_compressed(path, x=np.zeros(2**18))
    elif case == "object":
        np.savez(path, x=np.array([{"a": 1}], dtype=object))
    elif case == "structured":
        np.savez(path, x=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))
    else:
        with zipfile.ZipFile(path, "w") as zf:
            if case == "not_npy":
                zf.writestr("x.txt", b"hello")
            else:
                with zf.open("x.npy", "w") as fh:
                    np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (1000,)})
                    fh.write(b"\0" * 80)
    with pytest.raises(UnsafeFileError, match=match):
        read_npz(path, 2**20)
