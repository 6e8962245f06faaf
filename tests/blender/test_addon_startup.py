"""What a new user meets first: enabling the add-on, the startup file, a running capture in the panel.

Real headless Blender throughout. Where Blender has no stand-in without a window (events, a
panel's layout) the test passes a minimal one to the add-on's own code.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_helpers import (LayoutRecorder, assert_hands_seen_over_the_video, make_take,  # noqa: E402
                             random_hand_poses, sample_video)

pytestmark = pytest.mark.blender

#: Run in a fresh Python: install the extension zip into an empty profile, enable it, list what it imported.
_ENABLE_SCRIPT = """
import json, sys, time
import bpy
before = set(sys.modules)
t0 = time.perf_counter()
result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
seconds = time.perf_counter() - t0
module = "bl_ext.user_default.dahyf_blender"
enabled = module in bpy.context.preferences.addons and hasattr(bpy.ops.dahyf, "capture_video")
heavy = sorted({m.split(".")[0] for m in set(sys.modules) - before} & {"torch", "cv2", "mediapipe"})
print(json.dumps({"result": sorted(result), "enabled": enabled, "heavy": heavy, "seconds": seconds}))
bpy.ops.preferences.addon_disable(module=module)
"""


def test_enabling_the_addon_imports_no_torch_opencv_or_mediapipe(addon_zip, tmp_path):
    """Enabling runs at every Blender start: the engine's heavy modules load on the first capture only."""
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "profile"))
    proc = subprocess.run([sys.executable, "-c", _ENABLE_SCRIPT, str(addon_zip)], env=env, capture_output=True,
                          text=True, timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("{")), None)
    assert line is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(line)
    assert out["result"] == ["FINISHED"] and out["enabled"], out
    assert out["heavy"] == [], f"enabling the add-on imported {out['heavy']}"


def _hand_take(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return make_take({
        0: ("right", random_hand_poses(n, seed), rng.normal(0, 1, 10), np.c_[rng.normal(0.1, 0.03, (n, 2)), np.full(n, 0.6)]),
        1: ("left", random_hand_poses(n, seed + 1), rng.normal(0, 1, 10), np.c_[rng.normal(-0.1, 0.03, (n, 2)), np.full(n, 0.7)]),
    })


def test_a_take_in_the_startup_file_is_seen_over_the_video_not_the_cube(ctx, tmp_path):
    """The factory startup file has a 2 m Cube at the origin: the capture camera must not sit inside it."""
    bpy.ops.wm.read_homefile(use_factory_startup=True)
    assert {"Cube", "Camera", "Light"} <= set(bpy.data.objects.keys())
    path = _hand_take().save(tmp_path / "startup.npz")
    assert bpy.ops.dahyf.import_take(filepath=str(path)) == {"FINISHED"}
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    ctx.scene.frame_set(ctx.scene.frame_start)
    assert_hands_seen_over_the_video(ctx, arms)
    # the camera and the hands moved together: armature space is still the camera frame
    cam = ctx.scene.camera
    for arm in arms:
        assert (arm.matrix_world.translation - cam.matrix_world.translation).length < 1e-6
    # an empty scene keeps the documented origin
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.dahyf.import_take(filepath=str(path)) == {"FINISHED"}
    assert ctx.scene.camera.matrix_world.translation.length == 0.0


def test_capture_origin_moves_beside_the_geometry_only_when_it_is_in_view(sub):
    coords = sub("coords")
    lo, hi = coords.view_box((640, 480), 600.0, 5.0)
    np.testing.assert_allclose(lo, [-5 * 320 / 600, 0, -5 * 240 / 600])
    np.testing.assert_allclose(hi, [5 * 320 / 600, 5, 5 * 240 / 600])
    cube = np.array([[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]])
    origin = coords.clear_origin(cube, lo, hi, 0.5)
    assert origin[0] < -1.0 - hi[0] + 1e-9 and origin[1] == origin[2] == 0.0
    behind = np.array([[[-1.0, -9.0, -1.0], [1.0, -7.0, 1.0]]])  # behind the camera: not in view
    np.testing.assert_array_equal(coords.clear_origin(behind, lo, hi, 0.5), np.zeros(3))
    np.testing.assert_array_equal(coords.clear_origin(np.zeros((0, 2, 3)), lo, hi, 0.5), np.zeros(3))


def _timer():
    return SimpleNamespace(type="TIMER", value="NOTHING", ctrl=False, oskey=False, shift=False)


def _start(ctx, sub, video, take_path, **kw):
    job = sub("capture_job").CaptureJob(ctx, str(video), take_path=str(take_path), **kw)
    reports = []
    run = sub("ops_capture").ModalCapture(job, lambda kind, msg: reports.append((set(kind), msg)))
    run.start(ctx)
    return run, reports


def _tick_until(ctx, run, done, seconds=120):
    deadline = time.monotonic() + seconds
    result = {"RUNNING_MODAL"}
    while result == {"RUNNING_MODAL"} and not done() and time.monotonic() < deadline:
        result = run.handle(ctx, _timer())
        time.sleep(0.02)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("how", ["esc", "stop_button"])
def test_esc_or_stop_ends_a_running_capture_with_a_shorter_valid_take(ctx, sub, tmp_path, engine_available, how):
    """A real modal capture of the bundled clip: while it runs a second capture cannot start, the
    panel shows a progress bar and a Stop button; Esc or Stop keeps the frames keyed so far."""
    import dahyf

    ops_capture, ui = sub("ops_capture"), sub("ui")
    video, _ = sample_video()
    # the whole clip (210 frames): an offline capture keys its first rows only after the focal pass
    # (3 s) and the coverage recovery's window (1 s), so a shorter range could end before Esc
    run, reports = _start(ctx, sub, video, tmp_path / "partial.npz", hands="right", chunk_frames=8)
    try:
        assert not bpy.ops.dahyf.capture_video.poll() and bpy.ops.dahyf.capture_stop.poll()
        with pytest.raises(RuntimeError, match="poll"):
            bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), hands="RIGHT")
        assert _tick_until(ctx, run, lambda: run.job.session.num_frames > 0) == {"RUNNING_MODAL"}
        layout = LayoutRecorder()
        ui.draw_capture_button(layout)
        assert [d[0] for d in layout.drawn] == ["progress", "operator"]
        assert 0 < layout.drawn[0][1] < 1 and "hand frames keyed" in layout.drawn[0][2]
        assert layout.drawn[1][1] == "dahyf.capture_stop"
        if how == "esc":
            assert run.handle(ctx, SimpleNamespace(type="ESC", value="PRESS", ctrl=False, oskey=False)) == {"RUNNING_MODAL"}
        else:
            assert bpy.ops.dahyf.capture_stop() == {"FINISHED"}
        assert run.job.cancel.is_set() and "stopping" in run.text
        assert _tick_until(ctx, run, lambda: False) == {"FINISHED"}
    finally:
        run.close()
    take = dahyf.Take.load(tmp_path / "partial.npz")
    assert take.meta["cancelled"] and 0 < take.meta["frames_done"] < 210
    assert len(take) == run.job.session.num_frames and len(run.job.session.armatures) == 1
    assert any(msg.startswith("Cancelled; kept") for _, msg in reports), reports
    assert not ops_capture.running_captures() and run.timer is None and bpy.ops.dahyf.capture_video.poll()
    layout = LayoutRecorder()
    ui.draw_capture_button(layout)
    assert layout.drawn == [("operator", "dahyf.capture_video", "Capture from video")]


@pytest.mark.slow
def test_adjust_last_operation_cannot_rerun_a_capture(ctx, engine_available):
    """Blender's redo panel re-runs the last operator that has both REGISTER and UNDO; a capture
    must stay one undo step without being that operator (a redo re-ran it synchronously)."""
    video, _ = sample_video()
    result = bpy.ops.dahyf.capture_video("EXEC_DEFAULT", True, filepath=str(video), hands="RIGHT",
                                         use_frame_range=True, frame_start=0, frame_end=4)
    assert result == {"FINISHED"}
    done = list(ctx.window_manager.operators)
    assert done and done[-1].bl_idname == "DAHYF_OT_capture_video" and "UNDO" in done[-1].bl_options
    redoable = [op.bl_idname for op in done if {"REGISTER", "UNDO"} <= set(op.bl_options)]
    assert "DAHYF_OT_capture_video" not in redoable[-1:]


def test_hands_default_to_both(ctx):
    assert ctx.scene.dahyf.hands == "BOTH"
    assert bpy.ops.dahyf.capture_video.get_rna_type().properties["hands"].default == "BOTH"
