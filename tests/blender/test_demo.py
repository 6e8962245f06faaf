"""`dahyf demo`: the bundled sample video into a .blend + take (+ pictures), Blender in a subprocess."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]


def _demo(repo_dir, *args):
    return subprocess.run([sys.executable, "-m", "dahyf.cli", "demo", *args], cwd=repo_dir,
                          capture_output=True, text=True, timeout=600)


def test_demo_captures_the_sample_into_a_blend_and_a_take(repo_dir, tmp_path, engine_available):
    import dahyf
    from dahyf.demo import find_sample_video

    if find_sample_video() is None:
        pytest.skip("the bundled sample video is missing")
    proc = _demo(repo_dir, "--out", str(tmp_path), "--frame-range", "0", "30", "--no-render")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    blend = tmp_path / "open_hand_sample.blend"
    take = dahyf.Take.load(tmp_path / "open_hand_sample.take.npz")
    assert blend.stat().st_size > 0 and len(take) > 0
    assert "blend:" in proc.stdout and "hands:" in proc.stdout


def test_demo_with_a_missing_video_says_what_to_do(repo_dir, tmp_path):
    proc = _demo(repo_dir, "--out", str(tmp_path), "--video", str(tmp_path / "none.mp4"))
    assert proc.returncode == 2
    assert "video not found" in proc.stderr and "--video" in proc.stderr
    assert not any(tmp_path.glob("*.blend"))
