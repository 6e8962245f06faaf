"""Live capture in real headless Blender: the timer callback drives the live rig, Record keys a new
Action per take at scene time, errors keep what was recorded.

The source is the bundled sample clip (cut to 1.5 s) played in real time; background Blender runs
no event loop, so the tests call the registered timer function themselves, as Blender would.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from mathutils import Quaternion, Vector  # noqa: E402

from blender_helpers import scene_fingerprint  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]

CLIP_FRAMES = 45


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from dahyf.capture.video import VideoReader
    from dahyf.sample_video import SAMPLE_VIDEO
    from test_capture_media import write_clip

    frames = [f.image for f in VideoReader(SAMPLE_VIDEO, (0, CLIP_FRAMES))]
    return write_clip(tmp_path_factory.mktemp("live") / "clip.mp4", frames)


def _drive_timer(live_ui, record_after_s=None, stop_after_s=None, timeout=30.0):
    """Call the registered timer like Blender's event loop would, until it asks to be removed."""
    t0 = time.perf_counter()
    interval = 0.0
    while interval is not None and time.perf_counter() - t0 < timeout:
        time.sleep(interval)
        s = live_ui.SESSION
        if record_after_s is not None and s.state == "live" and not s.recording and \
                time.perf_counter() - t0 >= record_after_s:
            assert bpy.ops.dahyf.live_record() == {"FINISHED"}
            record_after_s = None
        if stop_after_s is not None and s.state == "live" and time.perf_counter() - t0 >= stop_after_s:
            assert bpy.ops.dahyf.live_stop() == {"FINISHED"}
            return None
        interval = live_ui._timer()
    return interval


def _assert_action_matches_take(arm, action_name, take, start_frame, fps, compat):
    from dahyf.hand.tables import BONE_NAMES

    assert arm.animation_data.action.name == action_name
    tr = take.track_rows(0)
    # scene time: the recording's first frame at start_frame, then time x scene fps; the last row
    # of each scene frame is keyed
    by_frame = {}
    for r, t in enumerate(tr.time_s):
        by_frame[start_frame + int(round(t * fps))] = r
    frames, keep = np.array(sorted(by_frame)), [by_frame[f] for f in sorted(by_frame)]
    assert frames[0] == start_frame
    curves = {(fc.data_path, fc.array_index): fc for fc in compat.channel_owner(arm).fcurves}
    for j, b in enumerate(BONE_NAMES):
        B = arm.data.bones[b].matrix_local.to_quaternion()
        keys = [curves[(f'pose.bones["{b}"].rotation_quaternion', i)].keyframe_points for i in range(4)]
        assert [len(k) for k in keys] == [len(frames)] * 4
        np.testing.assert_array_equal([k.co[0] for k in keys[0]], frames)
        for k, r in enumerate(keep):
            aa = Vector(tr.pose[r, j].astype(np.float64))
            R = Quaternion(aa.normalized(), aa.length) if aa.length > 0 else Quaternion()
            want = np.array(B.inverted() @ R @ B)
            got = np.array([keys[i][k].co[1] for i in range(4)])
            np.testing.assert_allclose(got, want if got @ want >= 0 else -want, atol=1e-5)


def test_live_session_driven_by_the_timer_keys_a_valid_take(ctx, clip, tmp_path, engine_available, sub):
    import dahyf

    live_ui, compat, rig = sub("live_ui"), sub("compat"), sub("rig")
    scene = ctx.scene
    scene.frame_current = 10
    s = scene.dahyf_live
    s.source, s.hands, s.take_path = str(clip), "RIGHT", str(tmp_path / "live.npz")
    assert bpy.ops.dahyf.live_start() == {"FINISHED"}
    session = live_ui.SESSION
    arm = bpy.data.objects["DaHyF Live R"]
    rest = [tuple(pb.rotation_quaternion) for pb in arm.pose.bones]
    assert _drive_timer(live_ui, record_after_s=0.0) is None     # the clip ended: the timer removes itself
    assert session.state == "stopped", session.message
    assert [tuple(pb.rotation_quaternion) for pb in arm.pose.bones] != rest   # the rig followed
    session.wait_saved()                                         # the file is written off the UI thread
    take = dahyf.Take.load(tmp_path / "live.npz")
    assert take.meta["live"] and len(take) > 0 and take.handedness == ("right",)
    fps = scene.render.fps / scene.render.fps_base
    _assert_action_matches_take(arm, "live.take001.right0", take, 10, fps, compat)
    assert bpy.data.actions["live.take001.right0"].use_fake_user
    # the saved take is an ordinary take: File > Import > DaHyF Take keys it onto a new rig
    n_arms = len([o for o in bpy.data.objects if o.type == "ARMATURE"])
    assert bpy.ops.dahyf.import_take(filepath=str(tmp_path / "live.npz")) == {"FINISHED"}
    imported = [o for o in bpy.data.objects if o.type == "ARMATURE" and o.get(rig.TAKE_PROP)]
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == n_arms + 1 and len(imported) == 1
    keys = compat.channel_owner(imported[0]).fcurves.find('pose.bones["wrist"].rotation_quaternion', index=0)
    assert len(keys.keyframe_points) == len(take)
    ticks = session.tick_stats()
    print(f"\nmain-thread time per tick over {ticks['ticks']} ticks: p50 {ticks['p50']:.3f} ms, "
          f"p95 {ticks['p95']:.3f} ms, max {ticks['max']:.3f} ms")
    assert ticks["ticks"] > CLIP_FRAMES / 2
    assert take.meta["focal_source"] == "default" and take.focal == pytest.approx(800.0)
    # a second take, with the panel's lens (the clip's true 600 px on 640 x 480 frames): a new Action,
    # the first one kept, the take at that focal
    s.lens_mm = 32.45
    assert bpy.ops.dahyf.live_start() == {"FINISHED"}
    assert _drive_timer(live_ui, record_after_s=0.0, stop_after_s=0.8) is None
    assert arm.animation_data.action.name == "live.take002.right0"
    assert "live.take001.right0" in bpy.data.actions
    live_ui.SESSION.wait_saved()
    assert (tmp_path / "live.002.npz").is_file() and "saved live.002.npz" in live_ui.SESSION.message
    second = dahyf.Take.load(tmp_path / "live.002.npz")
    assert second.focal == pytest.approx(600.0, rel=1e-3) and second.meta["focal_source"] == "user"


def test_missing_camera_is_reported_and_leaves_the_scene_unchanged(ctx, engine_available, sub):
    live_ui = sub("live_ui")
    before = scene_fingerprint()
    ctx.scene.dahyf_live.source = "97"
    assert bpy.ops.dahyf.live_start() == {"FINISHED"}            # opening happens off the UI thread
    assert _drive_timer(live_ui) is None
    assert live_ui.SESSION.state == "failed" and "Cannot open camera 97" in live_ui.SESSION.message
    assert scene_fingerprint() == before


def test_a_source_failing_mid_take_keeps_the_recorded_part(ctx, tmp_path, engine_available, sub):
    import cv2

    from dahyf.capture.video import VideoReader
    from dahyf.sample_video import SAMPLE_VIDEO

    live_ui = sub("live_ui")
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for f in VideoReader(SAMPLE_VIDEO, (0, 30)):
        writer.write(f.image)
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    s = ctx.scene.dahyf_live
    s.source, s.take_path = str(cut), str(tmp_path / "cut.npz")
    assert bpy.ops.dahyf.live_start() == {"FINISHED"}
    assert _drive_timer(live_ui, record_after_s=0.0) is None
    session = live_ui.SESSION
    assert session.state == "failed" and "stopped decoding" in session.message and "Kept" in session.message
    assert "live.take001.right0" in bpy.data.actions
    import dahyf

    session.wait_saved()
    assert 0 < len(dahyf.Take.load(tmp_path / "cut.npz")) < 30


def _mixamo_right_hand(ctx):
    """The open hand's right rig with Mixamo bone names (what the AUTO preset finds on a character)."""
    assert bpy.ops.dahyf.add_hand_rig(side="RIGHT") == {"FINISHED"}
    target = ctx.view_layer.objects.active
    target.name = "Character"
    names = {"wrist": "mixamorig:RightHand"}
    names.update({f"{f}{k}": f"mixamorig:RightHand{f.capitalize()}{k}"
                  for f in ("index", "middle", "ring", "pinky", "thumb") for k in (1, 2, 3)})
    for bone in list(target.data.bones):
        bone.name = names[bone.name]
    return target, names


def _tick_until(live_ui, done, timeout=10.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        time.sleep(0.01)
        live_ui._timer()
        if done():
            return
    raise AssertionError("timed out")


def test_live_drives_a_retargeted_rig(ctx, clip, engine_available, sub):
    # The live rig drives another armature (a hand with Mixamo bone names, found by the AUTO preset)
    # through the retargeter's live-preview constraints: its fingers point where the live hand's
    # do; Stop removes the constraints.
    from dahyf.hand.tables import BONE_NAMES

    live_ui = sub("live_ui")
    target, names = _mixamo_right_hand(ctx)
    s = ctx.scene.dahyf_live
    s.source, s.drive_armature = str(clip), target
    assert bpy.ops.dahyf.live_start() == {"FINISHED"}
    live_ui.SESSION.wait_started()
    assert live_ui.SESSION.constrained == "Character" and not live_ui.SESSION.plans
    assert any(c.name.startswith("DaHyF") for pb in target.pose.bones for c in pb.constraints)
    _tick_until(live_ui, lambda: live_ui.SESSION._last_index >= 0)
    ctx.view_layer.update()
    source = bpy.data.objects["DaHyF Live R"]

    def in_hand(obj, bones):   # each finger bone's direction (its Y axis) in the wrist bone's frame
        wrist = obj.pose.bones[bones[0]].matrix.to_3x3().inverted()
        return np.array([wrist @ obj.pose.bones[b].matrix.to_3x3().col[1] for b in bones[1:]])

    def angle(a, b):
        return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))

    src = in_hand(source, BONE_NAMES)
    tgt = in_hand(target, [names[b] for b in BONE_NAMES])
    rest = np.array([source.data.bones[BONE_NAMES[0]].matrix_local.to_3x3().inverted()
                     @ source.data.bones[b].matrix_local.to_3x3().col[1] for b in BONE_NAMES[1:]])
    assert angle(src, rest).max() > 10                           # the live hand is not flat
    err = angle(src, tgt)                                        # the same rest pose: the same directions
    print(f"\ndriven target vs live hand, finger directions: median {np.median(err):.2f}, max {err.max():.2f} deg")
    assert err.max() < 1.0, err
    assert bpy.ops.dahyf.live_stop() == {"FINISHED"}
    assert not any(pb.constraints for pb in target.pose.bones)


def test_live_drives_a_mirrored_hand_with_the_retargeters_pose(ctx, clip, engine_available, sub):
    # Mirror: the clip's right hand becomes a left live hand; the character has only a right hand,
    # which constraints cannot mirror: a Driver runs the retargeter's solve on a worker thread. The
    # pose it sets is the retargeter's own apply_current_pose for the same live pose.
    live_ui, retarget = sub("live_ui"), sub("retarget")
    target, names = _mixamo_right_hand(ctx)
    s = ctx.scene.dahyf_live
    s.source, s.hands, s.mirror, s.drive_armature = str(clip), "LEFT", True, target
    assert bpy.ops.dahyf.live_start() == {"FINISHED"}
    live_ui.SESSION.wait_started()
    driver = live_ui.SESSION.plans[0]
    assert driver.plan.mirrored and live_ui.SESSION.constrained is None
    # until a tick finds the target solved for the live rig's current pose
    _tick_until(live_ui, lambda: live_ui.SESSION._last_index >= 0 and driver._job is None and not driver._stale)
    driven = {pb.name: np.array(pb.rotation_quaternion) for pb in target.pose.bones}
    assert any(abs(q[0]) < 0.999 for q in driven.values())           # the target moved
    retarget.apply_current_pose(driver.plan)
    for pb in target.pose.bones:
        np.testing.assert_allclose(np.array(pb.rotation_quaternion), driven[pb.name], atol=1e-6)
    assert bpy.ops.dahyf.live_stop() == {"FINISHED"}
