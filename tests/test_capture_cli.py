"""`dahyf capture` outputs (issue 13 §4) and the CLI's handling of unexpected errors (§2)."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from dahyf.assets import SAMPLE_VIDEO as SAMPLE
from dahyf.capture.take import Take
from dahyf.cli import main

FAST = ["--hands", "right", "--frames", "0:3", "--quiet"]


def test_existing_take_is_kept_unless_force(tmp_path, capsys):
    out = tmp_path / "take.npz"
    assert main(["capture", str(SAMPLE), "-o", str(out), *FAST]) == 0
    before = out.read_bytes(), out.with_suffix(".json").read_bytes()
    capsys.readouterr()
    # refused before the capture: a missing video would otherwise be the error
    assert main(["capture", str(tmp_path / "missing.mp4"), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert "take.npz already exists" in err and "--force" in err
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == before
    assert main(["capture", str(SAMPLE), "-o", str(out), *FAST, "--frames", "0:2", "--force"]) == 0
    assert len(Take.load(out)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.json", "take.npz"]


def test_an_unrelated_sidecar_name_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "take.json").write_text("my notes")
    assert main(["capture", str(SAMPLE), "-o", str(tmp_path / "take.npz"), *FAST]) == 1
    assert "take.json already exists" in capsys.readouterr().err
    assert (tmp_path / "take.json").read_text() == "my notes" and not (tmp_path / "take.npz").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_unwritable_output_is_found_before_capturing(capsys, monkeypatch):
    from dahyf.capture import engine

    monkeypatch.setattr(engine, "load_engine", lambda *a, **k: pytest.fail("the capture started"))
    assert main(["capture", str(SAMPLE), "-o", "/proc/dahyf_take.npz", *FAST]) == 1
    assert "Cannot write the take /proc/dahyf_take.npz" in capsys.readouterr().err


@contextmanager
def held_by_another_writer(path):
    """Within the block, another thread holds the output lock of ``path`` (as a concurrent capture would)."""
    from dahyf.fileio import output_lock

    held, done = threading.Event(), threading.Event()

    def other_writer():
        with output_lock(path):
            held.set()
            done.wait(30)

    t = threading.Thread(target=other_writer)
    t.start()
    try:
        assert held.wait(30)
        yield
    finally:
        done.set()
        t.join()


def test_a_take_being_written_by_another_capture_is_refused(tmp_path, capsys):
    out = tmp_path / "take.npz"
    with held_by_another_writer(out):
        assert main(["capture", str(SAMPLE), "-o", str(out), *FAST]) == 1
        assert "being written by another capture" in capsys.readouterr().err
    assert not out.exists()


def test_unexpected_engine_error_is_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    from dahyf.capture import engine

    def broken(*args, **kwargs):
        raise RuntimeError("linalg.solve: singular U(3,3)\nsecond line")

    monkeypatch.setattr(engine, "load_engine", broken)
    monkeypatch.delenv("DAHYF_DEBUG", raising=False)
    argv = ["capture", str(SAMPLE), "-o", str(tmp_path / "take.npz"), *FAST]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "dahyf capture: internal error: RuntimeError: linalg.solve: singular U(3,3) second line" in err
    assert "--debug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError, match="singular"):
        main(["--debug", *argv])
    monkeypatch.setenv("DAHYF_DEBUG", "1")
    with pytest.raises(RuntimeError, match="singular"):
        main(argv)
    assert list(tmp_path.iterdir()) == []
