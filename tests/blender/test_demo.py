"""`dahyf demo`: the bundled sample video into a .blend + take (+ pictures), Blender in a subprocess."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]


def _demo(repo_dir, *args):
    return subprocess.run([sys.executable, "-m", "dahyf.cli", "demo", *args], cwd=repo_dir,
                          capture_output=True, text=True, timeout=600)


def test_demo_captures_the_sample_into_a_blend_and_a_take(repo_dir, tmp_path, engine_available):
    """The .blend the demo writes opens with the keyed hand rig, the take's frames and the video behind the camera."""
    import filecmp

    import bpy
    import dahyf
    from dahyf.demo import find_sample_video
    from dahyf.hand.tables import BONE_NAMES
    from dahyf_blender.rig import SIDE_PROP

    video = find_sample_video()
    if video is None:
        pytest.skip("the bundled sample video is missing")
    proc = _demo(repo_dir, "--out", str(tmp_path), "--frame-range", "0", "30", "--no-render")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "blend:" in proc.stdout and "hands:" in proc.stdout
    take = dahyf.Take.load(tmp_path / f"{video.stem}.take.npz")
    rows = take.track_for("right")
    assert len(rows) > 0
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / f"{video.stem}.blend"))
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert [a[SIDE_PROP] for a in arms] == ["right"]
    arm = arms[0]
    assert [b.name for b in arm.data.bones] == list(BONE_NAMES)
    assert arm.animation_data.action.name == f"{video.stem}.take001.right0"
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (int(rows.frame.min()) + 1, int(rows.frame.max()) + 1)
    clip = scene.camera.data.background_images[0].clip
    # the sample clip, compared by content: this process may import dahyf from the installed extension's copy
    assert filecmp.cmp(bpy.path.abspath(clip.filepath), video, shallow=False)
    for r in (0, len(rows) // 2, len(rows) - 1):  # the saved keys pose the rig as the take says (armature space = camera)
        scene.frame_set(int(rows.frame[r]) + 1)
        wrist = np.array(arm.pose.bones["wrist"].head)
        np.testing.assert_allclose(wrist, rows.joints3d[r][0], atol=1e-3)


def test_demo_with_a_missing_video_says_what_to_do(repo_dir, tmp_path):
    proc = _demo(repo_dir, "--out", str(tmp_path), "--video", str(tmp_path / "none.mp4"))
    assert proc.returncode == 2
    assert "video not found" in proc.stderr and "--video" in proc.stderr
    assert not any(tmp_path.glob("*.blend"))
