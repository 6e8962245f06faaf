"""The installed extension in real headless Blender: install, rig, keying, preview, import, bad input.

These tests need no capture engine: takes are built from real hand-model poses.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from mathutils import Matrix, Quaternion, Vector  # noqa: E402

from dahyf_blender.rig import SIDE_PROP, TRACK_PROP  # noqa: E402

from blender_helpers import make_take, random_hand_poses, scene_fingerprint  # noqa: E402

pytestmark = pytest.mark.blender


def test_extension_installs_from_zip_and_registers(addon, addon_zip):
    import zipfile

    names = zipfile.ZipFile(addon_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert any(n.startswith("wheels/dahyf-") for n in names)
    for op in ("capture_video", "import_take", "add_hand_rig"):
        assert hasattr(bpy.ops.dahyf, op)
    assert hasattr(bpy.types, "DAHYF_PT_capture")
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    assert prefs.device == "AUTO" and prefs.mano_folder == ""
    # relative imports only: the package is the extension's, not the repository's
    assert addon.__name__ == "bl_ext.user_default.dahyf_blender"


def test_add_hand_rig_has_mano_bones_rest_pose_and_skinned_mesh(ctx):
    import dahyf
    from dahyf.hand.tables import BONE_NAMES, PARENTS

    assert bpy.ops.dahyf.add_hand_rig(side="LEFT") == {"FINISHED"}
    arm = ctx.view_layer.objects.active
    assert [b.name for b in arm.data.bones] == list(BONE_NAMES)
    for j, b in enumerate(BONE_NAMES):
        parent = arm.data.bones[b].parent
        assert (parent.name if parent else None) == (BONE_NAMES[PARENTS[j]] if PARENTS[j] >= 0 else None)
        assert arm.pose.bones[b].rotation_mode == "QUATERNION"
    hand = dahyf.load_hand_model("open", "left")
    heads = np.array([list(arm.data.bones[b].head_local) for b in BONE_NAMES])
    np.testing.assert_allclose(heads, hand.rest_joints, atol=1e-6)
    mesh = next(o for o in arm.children if o.type == "MESH")
    assert len(mesh.data.vertices) == hand.num_vertices
    assert {g.name for g in mesh.vertex_groups} == set(BONE_NAMES)
    assert mesh.modifiers["Armature"].object == arm


def test_finger_curl_is_a_rotation_about_one_local_axis(ctx):
    """Each long finger's bones share their local X axis, which lies in the palm plane: curling a
    finger is a rotation about X that moves the tip towards the palm side, never sideways."""
    bpy.ops.dahyf.add_hand_rig(side="RIGHT")
    arm = ctx.view_layer.objects.active
    bones = arm.data.bones
    normal = (bones["index1"].head_local - bones["wrist"].head_local).cross(
        bones["pinky1"].head_local - bones["wrist"].head_local).normalized()
    for finger in ("index", "middle", "ring", "pinky"):
        xs = [bones[f"{finger}{i}"].matrix_local.to_3x3().col[0] for i in (1, 2, 3)]
        for x in xs:
            assert abs(x.dot(xs[0])) > 0.97, finger
            assert abs(x.dot(normal)) < 0.2, finger
        pb = arm.pose.bones[f"{finger}2"]
        tip0 = arm.pose.bones[f"{finger}3"].tail.copy()
        pb.rotation_quaternion = Quaternion((1, 0, 0), -1.0)
        bpy.context.view_layer.update()
        move = arm.pose.bones[f"{finger}3"].tail - tip0
        assert abs(move.dot(xs[1])) < 1e-5 * move.length + 1e-7  # no sideways motion
        assert abs(move.dot(normal)) > 0.5 * move.length  # towards / away from the palm
        pb.rotation_quaternion = Quaternion()


def _import(ctx, tmp_path, take, name="clip", video=""):
    path = take.save(tmp_path / f"{name}.npz")
    assert bpy.ops.dahyf.import_take(filepath=str(path), video=str(video)) == {"FINISHED"}
    return sorted((o for o in bpy.data.objects if o.type == "ARMATURE"), key=lambda o: o[TRACK_PROP])


def _two_hand_take(n=12, seed=0, source=""):
    rng = np.random.default_rng(seed)
    return make_take({
        0: ("right", random_hand_poses(n, seed), rng.normal(0, 1, 10), np.c_[rng.normal(0.1, 0.05, (n, 2)), np.full(n, 0.7)]),
        1: ("left", random_hand_poses(n, seed + 1), rng.normal(0, 1, 10), np.c_[rng.normal(-0.1, 0.05, (n, 2)), np.full(n, 0.8)]),
    }, source=source, seed=seed)


def test_keyed_pose_gives_the_hand_model_joints_within_1mm(ctx, tmp_path):
    import dahyf

    take = _two_hand_take()
    arms = _import(ctx, tmp_path, take)
    from dahyf.hand.tables import BONE_NAMES

    from_cv = Matrix(((1, 0, 0), (0, 0, 1), (0, -1, 0)))
    worst = 0.0
    for arm in arms:
        tr = take.track_rows(arm[TRACK_PROP])
        hand = dahyf.load_hand_model("open", tr.handedness)
        ref = hand(*(np.asarray(a, np.float64) for a in (tr.pose, tr.betas, tr.transl))).joints
        for i, f in enumerate(tr.frame):
            ctx.scene.frame_set(int(f) + 1)
            got = np.array([list(arm.matrix_world @ arm.pose.bones[b].head) for b in BONE_NAMES])
            want = np.array([list(from_cv @ Vector(p)) for p in ref[i]])
            worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= 1e-3, f"worst joint error {worst * 1000:.3f} mm"


def test_one_quaternion_key_per_frame_matching_the_take(ctx, tmp_path, sub):
    compat = sub("compat")
    take = _two_hand_take(n=9, seed=3)
    arms = _import(ctx, tmp_path, take)
    from dahyf.hand.tables import BONE_NAMES

    assert len(arms) == 2
    for arm in arms:
        tr = take.track_rows(arm[TRACK_PROP])
        curves = {(fc.data_path, fc.array_index): fc for fc in compat.channel_owner(arm).fcurves}
        for j, b in enumerate(BONE_NAMES):
            B = arm.data.bones[b].matrix_local.to_quaternion()
            keys = [curves[(f'pose.bones["{b}"].rotation_quaternion', i)].keyframe_points for i in range(4)]
            assert all(len(k) == len(tr) for k in keys)
            for r in range(len(tr)):
                aa = Vector(tr.pose[r, j].astype(np.float64))
                R = Quaternion(aa.normalized(), aa.length) if aa.length > 0 else Quaternion()
                want = B.inverted() @ R @ B
                got = Quaternion([keys[i][r].co[1] for i in range(4)])
                assert keys[0][r].co[0] == tr.frame[r] + 1
                sign = 1.0 if got.dot(want) >= 0 else -1.0
                np.testing.assert_allclose(np.array(got), sign * np.array(want), atol=1e-5)


def test_each_take_gets_its_own_action_and_low_confidence_frames_show(ctx, tmp_path, sub):
    compat, keying = sub("compat"), sub("keying")
    take = _two_hand_take(n=10, seed=5)
    first = _import(ctx, tmp_path, take, "clip")
    first_actions = {a.animation_data.action.name for a in first}
    second = [o for o in _import(ctx, tmp_path, take, "clip") if o not in first]
    assert len(second) == 2
    second_actions = {a.animation_data.action.name for a in second}
    assert not first_actions & second_actions
    assert {n.split(".")[1] for n in first_actions} == {"take001"}
    assert {n.split(".")[1] for n in second_actions} == {"take002"}
    for arm in first:  # the earlier take is untouched
        assert arm.animation_data.action.name in first_actions
    arm = second[0]
    tr = take.track_rows(arm[TRACK_PROP])
    conf = next(fc for fc in compat.channel_owner(arm).fcurves if fc.data_path == f'["{keying.CONFIDENCE_PROP}"]')
    np.testing.assert_allclose([k.co[1] for k in conf.keyframe_points], tr.confidence, atol=1e-6)
    types = np.array([k.type for k in conf.keyframe_points])
    assert tr.filled.any() and (~tr.filled).any()
    np.testing.assert_array_equal(types == keying.FILLED_KEY_TYPE, tr.filled)


def test_preview_camera_overlays_the_hand_on_the_video(ctx, tmp_path, shared_video):
    from bpy_extras.object_utils import world_to_camera_view

    take = _two_hand_take(n=6, seed=7, source=str(shared_video))
    arms = _import(ctx, tmp_path, take, video=shared_video)
    scene = ctx.scene
    cam = scene.camera
    W, H = take.image_size
    assert (scene.render.resolution_x, scene.render.resolution_y) == (W, H)
    assert cam.data.lens == pytest.approx(take.focal * cam.data.sensor_width / W, rel=1e-6)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(take.fps)
    assert (scene.frame_start, scene.frame_end) == (int(take.frame.min()) + 1, int(take.frame.max()) + 1)
    bg = cam.data.background_images[0]
    assert bg.source == "MOVIE_CLIP" and os.path.samefile(bpy.path.abspath(bg.clip.filepath), shared_video)
    # a posed joint lands on the pixel the engine's pinhole camera gives
    arm = arms[0]
    tr = take.track_rows(arm[TRACK_PROP])
    import dahyf

    hand = dahyf.load_hand_model("open", tr.handedness)
    joints = hand(*(np.asarray(a, np.float64) for a in (tr.pose, tr.betas, tr.transl))).joints
    scene.frame_set(int(tr.frame[2]) + 1)
    p = world_to_camera_view(scene, cam, arm.matrix_world @ arm.pose.bones["index3"].head)
    px = np.array([p.x * W, (1 - p.y) * H])
    j = joints[2, 3]
    want = j[:2] / j[2] * take.focal + np.array([W / 2, H / 2])
    np.testing.assert_allclose(px, want, atol=0.5)


def test_blend_saves_and_reloads_with_the_animation(ctx, tmp_path, sub):
    compat, keying = sub("compat"), sub("keying")
    take = _two_hand_take(n=5, seed=9)
    arms = _import(ctx, tmp_path, take)
    names = {a.name: a.animation_data.action.name for a in arms}
    blend = str(tmp_path / "scene.blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend)
    bpy.ops.wm.open_mainfile(filepath=blend)
    for arm_name, action_name in names.items():
        arm = bpy.data.objects[arm_name]
        assert arm.animation_data.action.name == action_name
        fcurves = [fc for fc in compat.channel_owner(arm).fcurves if fc.data_path != keying.VISIBILITY_PATH]
        assert len(fcurves) == 16 * 4 + 3 + 1
        assert all(len(fc.keyframe_points) == 5 for fc in fcurves)


def test_missing_video_is_reported_and_leaves_the_scene_unchanged(ctx, tmp_path):
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match="Video not found"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(tmp_path / "nope.mp4"), hands="BOTH")
    assert scene_fingerprint() == before


def test_wrong_mano_folder_is_reported_and_leaves_the_scene_unchanged(ctx, tmp_path, shared_video, addon):
    prefs = ctx.preferences.addons[addon.__name__].preferences
    prefs.mano_folder = str(tmp_path)
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match="lacks MANO_RIGHT.pkl and MANO_LEFT.pkl"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(shared_video), hands="BOTH")
    with pytest.raises(RuntimeError, match="MANO folder"):
        bpy.ops.dahyf.add_hand_rig(side="RIGHT")
    assert scene_fingerprint() == before


def _hostile_mano_pickles():
    """name -> builder of crafted MANO_*.pkl bytes: the engine's probes (tests/hostile_files.py) and a
    pickle that runs a shell command when a plain unpickler reads it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from hostile_files import MANO_PROBES, Reduce
    finally:
        sys.path.pop(0)

    def runs_a_command(marker):
        return pickle.dumps({"v_template": Reduce(os.system, (f"touch {marker}",))}, protocol=2)
    return {"runs_a_command": runs_a_command, **{k: (lambda marker, b=b: b()) for k, b in MANO_PROBES.items()}}


@pytest.mark.parametrize("probe", ["runs_a_command", "object_scalar", "zero_stride", "uninitialised"])
def test_crafted_mano_folder_is_refused_and_leaves_the_scene_unchanged(ctx, tmp_path, shared_video, addon, probe):
    """A MANO folder in the preferences whose pickles are crafted (issue 13): Capture and Add Hand Rig
    stop with a message naming the file, nothing in the pickle runs, Blender does not crash or
    allocate gigabytes, and the scene is unchanged."""
    marker = tmp_path / "ran"
    folder = tmp_path / "mano"
    folder.mkdir()
    for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
        (folder / name).write_bytes(_hostile_mano_pickles()[probe](marker))
    prefs = ctx.preferences.addons[addon.__name__].preferences
    prefs.mano_folder = str(folder)
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match=r"MANO_RIGHT\.pkl: refused"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(shared_video), hands="BOTH")
    with pytest.raises(RuntimeError, match=r"MANO_LEFT\.pkl: refused"):
        bpy.ops.dahyf.add_hand_rig(side="LEFT")
    assert scene_fingerprint() == before
    assert not marker.exists(), "the pickle's command ran"


def test_not_a_take_is_reported_and_leaves_the_scene_unchanged(ctx, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match="bad.npz"):
        bpy.ops.dahyf.import_take(filepath=str(bad))
    assert scene_fingerprint() == before


def test_unsupported_blender_version_is_refused_with_a_clear_message(sub):
    compat = sub("compat")
    with pytest.raises(compat.UnsupportedBlender, match=r"needs Blender 4\.2\.0 or newer \(this is Blender 4\.1\.0\)"):
        compat.check_blender_version((4, 1, 0))
    if sub("build_info").TIER == "py311":
        compat.check_blender_version((4, 2, 0))
    compat.check_blender_version(bpy.app.version)


def test_streamed_chunks_key_the_same_curves_as_one_batch(ctx, sub):
    """The modal capture keys chunk by chunk; the result must equal keying the whole take at once."""
    import dahyf
    from dahyf.hand.tables import BONE_NAMES

    keying, rig, compat = sub("keying"), sub("rig"), sub("compat")
    hand = dahyf.load_hand_model("open", "right")
    pose = random_hand_poses(40, seed=11)
    transl = np.c_[np.zeros((40, 2)), np.full(40, 0.5)]
    conf = np.linspace(0, 1, 40)
    filled = conf < 0.3
    curves = []
    for chunk in (40, 7):
        arm, _ = rig.build_hand_rig(ctx, hand, "right")
        k = keying.TrackKeyer(arm, "t", BONE_NAMES, rig.bone_rest_quaternions(arm))
        for s in range(0, 40, chunk):
            k.append(np.arange(s, min(40, s + chunk)) + 1, pose[s:s + chunk], transl[s:s + chunk],
                     conf[s:s + chunk], filled[s:s + chunk])
        k.flush()
        curves.append({(fc.data_path, fc.array_index): [(tuple(p.co), p.type) for p in fc.keyframe_points]
                       for fc in compat.channel_owner(arm).fcurves})
    assert curves[0] == curves[1]
    assert all(len(v) == 40 for k, v in curves[0].items() if k[0] != keying.VISIBILITY_PATH)


def test_new_scenes_take_threshold_and_smoothing_from_the_preferences(addon, tmp_path):
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    old = prefs.threshold, prefs.smoothing
    prefs.threshold, prefs.smoothing = 0.8, 0.2
    try:
        bpy.ops.wm.read_homefile(use_empty=True)
        s = bpy.context.scene.dahyf
        assert (s.threshold, s.smoothing) == pytest.approx((0.8, 0.2))
        s.threshold = 0.3  # the artist's choice for this scene sticks
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "prefs_defaults.blend"))
        bpy.ops.wm.open_mainfile(filepath=bpy.data.filepath)
        assert bpy.context.scene.dahyf.threshold == pytest.approx(0.3)
    finally:
        prefs.threshold, prefs.smoothing = old  # later tests see the real defaults


def test_capture_button_uses_the_panel_settings(ctx, tmp_path):
    """The panel's button calls the operator without arguments: the scene settings fill them in."""
    ctx.scene.dahyf.video = str(tmp_path / "from_panel.mp4")
    with pytest.raises(RuntimeError, match="Video not found: .*from_panel.mp4"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT")
    ctx.scene.dahyf.video = ""
    with pytest.raises(RuntimeError, match="No video chosen"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT")


def test_hands_show_only_on_the_frames_they_were_captured(ctx, tmp_path, sub):
    """Outside its captured frames a hand shrinks to nothing (wrist scale); nothing is ever hidden
    (a hidden object cannot be selected, and exports of the selection dropped it)."""
    keying = sub("keying")
    frames, hidden = keying.visibility_keys(np.array([3, 4, 5, 9, 10, 12]))
    assert dict(zip(frames.tolist(), hidden.tolist())) == {2: 1, 3: 0, 6: 1, 8: 1, 9: 0, 11: 1, 12: 0, 13: 1}
    take = _two_hand_take(n=6, seed=2)  # video frames 3..8 = scene frames 4..9
    arms = _import(ctx, tmp_path, take)
    for arm in arms:
        mesh = next(o for o in arm.children if o.type == "MESH")
        for frame, hide in ((3, True), (4, False), (9, False), (10, True), (40, True)):
            ctx.scene.frame_set(frame)
            verts = mesh.evaluated_get(ctx.evaluated_depsgraph_get()).data.vertices
            co = np.array([list(mesh.matrix_world @ v.co) for v in verts])
            extent = float(np.ptp(co, axis=0).max())
            assert (extent < 1e-4) if hide else (extent > 0.1), (frame, extent)
            assert mesh.visible_get() and arm.visible_get() and not mesh.hide_render, frame


def test_capture_job_hands_the_worker_thread_a_plain_copy_of_the_preferences(ctx, tmp_path, sub, addon):
    """The engine is loaded on the worker thread, which must never read Blender data (the preferences)."""
    capture_job = sub("capture_job")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 16)
    prefs = ctx.preferences.addons[addon.__name__].preferences
    prefs.device = "CPU"
    try:
        job = capture_job.CaptureJob(ctx, str(video), "right")
        assert not isinstance(job.prefs, bpy.types.bpy_struct)
        prefs.device = "CUDA"  # a change in the preferences during a capture does not reach the worker
        assert (job.prefs.device, job.prefs.mano_folder, job.prefs.checkpoint) == ("CPU", "", prefs.checkpoint)
    finally:
        prefs.device = "AUTO"


def _start_modal(ctx, sub, video, **kw):
    """A real modal capture (engine thread, timer, progress), as the operator's invoke starts it."""
    job = sub("capture_job").CaptureJob(ctx, str(video), **kw)
    reports = []
    run = sub("ops_capture").ModalCapture(job, lambda kind, msg: reports.append((kind, msg)))
    run.start(ctx)
    return run, reports


def test_unregister_and_cancel_stop_a_running_capture(ctx, tmp_path, sub):
    """Blender frees a modal operator whose class is unregistered without calling its cancel():
    unregister() itself must stop the engine and remove the timer; cancel() does the same."""
    from types import SimpleNamespace

    ops_capture = sub("ops_capture")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 16)
    run, _ = _start_modal(ctx, sub, video, hands="right")
    assert ops_capture.running_captures() == [run] and run.timer is not None
    ops_capture.unregister()
    try:
        assert run.job.cancel.is_set() and not ops_capture.running_captures() and run.timer is None
    finally:
        ops_capture.register()
    run, _ = _start_modal(ctx, sub, video, hands="right")
    bpy.types.DAHYF_OT_capture_video.cancel(SimpleNamespace(_modal=run), ctx)
    assert run.job.cancel.is_set() and run.timer is None and not ops_capture.running_captures()


def test_scene_settings_register_and_unregister_through_one_helper(ctx, sub):
    """The capture, retarget and live settings (scene.dahyf, scene.dahyf_retarget, scene.dahyf_live)
    and their load handlers come and go with their modules, all through props.scene_settings_factory."""
    props, retarget, live_ui = sub("props"), sub("retarget"), sub("live_ui")
    modules = ((props, "dahyf", "load_post", props._on_load_post), (retarget, "dahyf_retarget", None, None),
               (live_ui, "dahyf_live", "load_pre", live_ui._on_load_pre))
    for module, attr, handlers, handler in modules:
        assert module.register.__qualname__ == "scene_settings_factory.<locals>.register", module.__name__
        assert hasattr(bpy.types.Scene, attr)
        assert handler is None or handler in getattr(bpy.app.handlers, handlers)
    for module, *_ in reversed(modules):
        module.unregister()
    try:
        for module, attr, handlers, handler in modules:
            assert not hasattr(bpy.types.Scene, attr)
            assert handler is None or handler not in getattr(bpy.app.handlers, handlers)
    finally:
        for module, *_ in modules:
            module.register()
    for module, attr, handlers, handler in modules:
        assert hasattr(ctx.scene, attr)
        assert handler is None or getattr(bpy.app.handlers, handlers).count(handler) == 1


def test_undo_keys_are_held_during_a_modal_capture(ctx, tmp_path, sub):
    """Ctrl+Z during a capture would free the rigs being keyed: the modal handler swallows it."""
    from types import SimpleNamespace

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 16)
    run, reports = _start_modal(ctx, sub, video, hands="right")
    try:
        for ctrl, oskey, shift in ((True, False, False), (False, True, False), (True, False, True)):
            event = SimpleNamespace(type="Z", value="PRESS", ctrl=ctrl, oskey=oskey, shift=shift)
            assert run.handle(ctx, event) == {"RUNNING_MODAL"}
        assert len(reports) == 3 and "Esc" in reports[0][1]
        other = SimpleNamespace(type="Z", value="PRESS", ctrl=False, oskey=False, shift=False)
        assert run.handle(ctx, other) == {"PASS_THROUGH"}
    finally:
        run.stop()
        run.close()


def test_a_missing_take_folder_is_reported_before_capturing(ctx, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 16)
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match=r"Cannot save the take to .*folder .*missing does not exist"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), take_path=str(tmp_path / "missing" / "t.npz"))
    assert scene_fingerprint() == before


def test_retarget_after_capture_bakes_the_captured_frames_only(ctx, tmp_path, sub):
    """The capture's 'Existing armature' target bakes the rig's keyed frames, not its visibility keys
    (one frame before and after the capture)."""
    retarget = sub("retarget")
    take = _two_hand_take(n=6, seed=4)  # video frames 3..8 = scene frames 4..9
    arm = _import(ctx, tmp_path, take)[0]
    assert bpy.ops.dahyf.add_hand_rig(side="RIGHT" if arm[SIDE_PROP] == "right" else "LEFT") == {"FINISHED"}
    target = ctx.view_layer.objects.active
    action, _ = retarget.retarget_objects(ctx, arm, target)
    assert tuple(action.frame_range) == (4.0, 9.0)


def test_rollback_after_keying_removes_everything_it_made(ctx, sub, shared_video):
    """What a capture that fails after keying some chunks does (this used to crash Blender: the
    armature/mesh/camera data went before the objects that used them)."""
    session, engine_api, prefs = sub("session"), sub("engine_api"), sub("prefs")
    before = scene_fingerprint(), sorted(bpy.data.armatures.keys()), sorted(bpy.data.meshes.keys())
    sess = session.TakeSession(ctx, prefs.get_prefs(ctx), str(shared_video))  # the video as background
    sess.add_rows(engine_api.as_rows(_two_hand_take(n=4)))
    sess.flush()
    assert len(sess.armatures) == 2 and sess.camera.data.background_images[0].clip is not None
    sess.rollback()
    assert (scene_fingerprint(), sorted(bpy.data.armatures.keys()), sorted(bpy.data.meshes.keys())) == before


def test_panel_values_set_before_the_defaults_were_applied_are_kept(addon):
    """The file open when the add-on is enabled never had the preference defaults applied (no file
    load since): a threshold set in its panel must survive the first Capture click."""
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    old = prefs.threshold, prefs.smoothing
    prefs.threshold, prefs.smoothing = 0.8, 0.2
    try:
        bpy.ops.wm.read_homefile(use_empty=True)
        s = bpy.context.scene.dahyf
        s.property_unset("threshold")
        s.property_unset("smoothing")
        s.defaults_applied = False  # as in a file opened before the add-on was enabled
        s.threshold = 0.3
        with pytest.raises(RuntimeError, match="No video chosen"):
            bpy.ops.dahyf.capture_video("EXEC_DEFAULT")
        assert (s.threshold, s.smoothing, s.defaults_applied) == (pytest.approx(0.3), pytest.approx(0.2), True)
    finally:
        prefs.threshold, prefs.smoothing = old
