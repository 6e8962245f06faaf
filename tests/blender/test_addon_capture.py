"""Capturing real videos through the installed extension: the bundled sample clip scored against its
ground truth, the team's two-hand video, the modal steps, hands seen too rarely, bad input.

Needs the bundled capture engine (its absence skips outside CI; a broken one fails) and, for some
tests, the team's test video (skips without it).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from mathutils import Quaternion, Vector  # noqa: E402

from dahyf_blender.rig import SIDE_PROP, TRACK_PROP  # noqa: E402

from blender_helpers import (assert_hands_seen_over_the_video, require_engine, sample_video,  # noqa: E402
                             scene_fingerprint)

pytestmark = [pytest.mark.blender, pytest.mark.slow]

#: A short stretch of the test video with both hands in view.
FRAMES = (0, 24)


def _assert_keys_match_take(arms, take, compat):
    from dahyf.hand.tables import BONE_NAMES

    assert {a[TRACK_PROP] for a in arms} == {t for t in range(take.num_tracks) if len(take.track_rows(t))}
    for arm in arms:
        tr = take.track_rows(arm[TRACK_PROP])
        assert arm[SIDE_PROP] == tr.handedness
        curves = {(fc.data_path, fc.array_index): fc for fc in compat.channel_owner(arm).fcurves}
        for j, b in enumerate(BONE_NAMES):
            B = arm.data.bones[b].matrix_local.to_quaternion()
            keys = [curves[(f'pose.bones["{b}"].rotation_quaternion', i)].keyframe_points for i in range(4)]
            assert [len(k) for k in keys] == [len(tr)] * 4  # one key per captured frame
            np.testing.assert_array_equal([k.co[0] for k in keys[0]], tr.frame + 1)
            for r in range(len(tr)):
                aa = Vector(tr.pose[r, j].astype(np.float64))
                R = Quaternion(aa.normalized(), aa.length) if aa.length > 0 else Quaternion()
                want = np.array(B.inverted() @ R @ B)
                got = np.array([keys[i][r].co[1] for i in range(4)])
                np.testing.assert_allclose(got, want if got @ want >= 0 else -want, atol=1e-5)


def test_capture_video_exec_default_keys_both_hands_and_survives_save_reload(
        ctx, tmp_path, shared_video, engine_available, sub):
    import dahyf

    compat = sub("compat")
    take_path = tmp_path / "cap.npz"
    result = bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(shared_video), hands="BOTH",
                                         use_frame_range=True, frame_start=FRAMES[0], frame_end=FRAMES[1],
                                         take_path=str(take_path))
    assert result == {"FINISHED"}
    take = dahyf.Take.load(take_path)
    assert len(take) > 0 and take.meta["complete"]
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 2  # the test video shows both hands
    _assert_keys_match_take(arms, take, compat)
    actions = {a.name: a.animation_data.action.name for a in arms}
    assert all(n.startswith("dynhamr_demo3.take001.") for n in actions.values())

    blend = str(tmp_path / "capture.blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend)
    bpy.ops.wm.open_mainfile(filepath=blend)
    arms = [bpy.data.objects[n] for n in actions]
    assert {a.name: a.animation_data.action.name for a in arms} == actions
    _assert_keys_match_take(arms, take, compat)


def test_modal_steps_key_chunks_as_they_arrive_and_cancel_keeps_a_valid_partial_take(
        ctx, tmp_path, shared_video, engine_available, sub):
    """Drives the same CaptureJob.step() that the modal operator's timer calls."""
    import dahyf

    compat, capture_job = sub("compat"), sub("capture_job")
    job = capture_job.CaptureJob(ctx, str(shared_video), "both", frame_range=(0, 200), chunk_frames=8,
                                 take_path=str(tmp_path / "partial.npz"))
    job.start_thread()
    progress, keyed, ended = [], [], False
    deadline = time.monotonic() + 180
    while not ended and time.monotonic() < deadline:
        ended = job.step()
        if job.chunks and (not progress or job.progress != progress[-1]):
            progress.append(job.progress)
            keyed.append(job.session.num_frames)
        if job.session.num_frames > 0 and len(job.chunks) >= 2 and not job.cancel.is_set():
            job.cancel.set()  # what Esc does
        time.sleep(0.02)
    assert ended, "the engine did not end its stream after the cancel"
    take = job.finish()
    assert len(progress) >= 2 and progress == sorted(progress) and 0 < progress[-1] < 1
    assert keyed == sorted(keyed)
    assert take.meta["cancelled"] and job.chunks[-1].cancelled
    assert 0 < job.frames_done < 200
    saved = dahyf.Take.load(tmp_path / "partial.npz")
    assert len(saved) == len(take) == job.session.num_frames
    _assert_keys_match_take(job.session.armatures, saved, compat)


def test_video_without_hands_is_reported_and_leaves_the_scene_unchanged(ctx, tmp_path, engine_available):
    import cv2

    path = str(tmp_path / "empty.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(15):
        writer.write(rng.integers(90, 110, (240, 320, 3), dtype=np.uint8))
    writer.release()
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match="No hands found in empty.mp4"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=path, hands="BOTH")
    assert scene_fingerprint() == before


def test_capture_onto_an_existing_armature_bakes_a_new_action_on_it(ctx, shared_video, engine_available, sub):
    compat, rig = sub("compat"), sub("rig")
    assert bpy.ops.dahyf.add_hand_rig(side="RIGHT") == {"FINISHED"}
    target = ctx.view_layer.objects.active
    target.name = "My Character Hand"
    settings = ctx.scene.dahyf
    settings.target, settings.target_armature = "ARMATURE", target
    result = bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(shared_video), hands="RIGHT",
                                         use_frame_range=True, frame_start=FRAMES[0], frame_end=FRAMES[1])
    assert result == {"FINISHED"}
    source = next(o for o in bpy.data.objects if o.type == "ARMATURE" and rig.TAKE_PROP in o)
    assert target.animation_data is not None and target.animation_data.action is not None
    assert target.animation_data.action != source.animation_data.action
    keyed = {fc.data_path for fc in compat.channel_owner(target).fcurves}
    assert any("index2" in p for p in keyed)


def test_existing_armature_target_without_an_armature_is_reported(ctx, shared_video):
    ctx.scene.dahyf.target = "ARMATURE"
    with pytest.raises(RuntimeError, match="no armature is chosen"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(shared_video), hands="RIGHT")


def test_unreadable_video_is_reported_and_leaves_the_scene_unchanged(ctx, tmp_path, engine_available):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match="broken.mp4"):
        bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(bad), hands="RIGHT")
    assert scene_fingerprint() == before


def test_a_take_that_cannot_be_saved_leaves_the_scene_unchanged(ctx, tmp_path, shared_video, engine_available, sub):
    """The take's folder vanishes during the capture: the error is raised and the keyed rigs go too."""
    import dahyf

    capture_job = sub("capture_job")
    folder = tmp_path / "takes"
    folder.mkdir()
    before = scene_fingerprint()
    job = capture_job.CaptureJob(ctx, str(shared_video), "right", frame_range=(0, 6), take_path=str(folder / "t.npz"))
    folder.rmdir()
    with pytest.raises(dahyf.CaptureError, match="does not exist"):
        job.run()
    assert scene_fingerprint() == before


def test_cancel_before_the_first_keys_says_cancelled_not_no_hands(ctx, tmp_path, engine_available, sub):
    """Esc before any hand was found: the report says the capture was cancelled, not that the video has no hands."""
    import cv2

    path = str(tmp_path / "late_hand.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    for _ in range(5):
        writer.write(np.full((240, 320, 3), 100, dtype=np.uint8))
    writer.release()
    capture_job = sub("capture_job")
    before = scene_fingerprint()
    job = capture_job.CaptureJob(ctx, path, "both")
    job.cancel.set()  # Esc pressed while the engine was starting
    with pytest.raises(Exception, match="Capture cancelled before any hand frame was keyed") as err:
        job.run()
    assert "found" not in str(err.value)
    assert scene_fingerprint() == before


def test_a_broken_engine_fails_the_capture_tests_instead_of_skipping_them(tmp_path, monkeypatch):
    """Only a missing checkpoint outside CI skips; one that is there but does not load fails."""
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    monkeypatch.setenv("DAHYF_TEST_CHECKPOINT", str(broken))
    with pytest.raises(pytest.fail.Exception, match="broken.pt does not load"):
        require_engine()
    monkeypatch.setenv("DAHYF_TEST_CHECKPOINT", str(tmp_path / "missing.pt"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing.pt is missing"):
        require_engine()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="on CI every capture test must run"):
        require_engine()


#: The sample clip's PA-MPJPE limit: 4.14 mm measured (bpy 5.0.1 / Python 3.11 and Python 3.13, the
#: default engine, BENCHMARKS.md) plus 20 %. A 6 mm limit let a planted bug through (landmark y scaled
#: by the image width: 5.74 mm; docs/testing.md).
SAMPLE_PA_MPJPE_MM = 5.0


def test_capture_of_the_sample_clip_in_the_startup_file_matches_its_ground_truth(ctx, tmp_path, engine_available):
    """The README's accuracy promise, through the add-on: the whole bundled clip captured in the
    factory startup file (Cube included) scores PA-MPJPE <= SAMPLE_PA_MPJPE_MM against the clip's
    exact ground truth; the keyed rig holds the take's joints; camera view shows the hand over the video."""
    import dahyf
    from dahyf import sample_video as sv
    from dahyf.hand.tables import BONE_NAMES, KEYPOINT_NAMES

    video, gt = sample_video()
    bpy.ops.wm.read_homefile(use_factory_startup=True)
    result = bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), take_path=str(tmp_path / "sample.npz"))
    assert result == {"FINISHED"}
    take = dahyf.Take.load(tmp_path / "sample.npz")
    score = sv.evaluate_take_against_gt(take, gt)
    assert score["frames"] >= 0.95 * take.meta["frames_done"], score
    assert score["pa_mpjpe_mm"] <= SAMPLE_PA_MPJPE_MM, score
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert [a[SIDE_PROP] for a in arms] == ["right"]
    rows = take.track_for("right")
    kp = [KEYPOINT_NAMES.index(b) for b in BONE_NAMES]
    for r in np.linspace(0, len(rows) - 1, 5).round().astype(int):
        ctx.scene.frame_set(int(rows.frame[r]) + 1)
        heads = np.array([list(arms[0].pose.bones[b].head) for b in BONE_NAMES])  # armature space = camera frame
        np.testing.assert_allclose(heads, rows.joints3d[r][kp], atol=1e-3)
    ctx.scene.frame_set(int(rows.frame[len(rows) // 2]) + 1)
    assert_hands_seen_over_the_video(ctx, arms)


def _mirror_cut(path, n_right=4, n_left=20):
    """A clip whose first frames show the sample's right hand and the rest its mirror image (a left hand)."""
    import cv2

    video, _ = sample_video()
    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(n_right + n_left)]
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for i, f in enumerate(frames):
        writer.write(f if i < n_right else cv2.flip(f, 1))
    writer.release()
    return path


def test_a_requested_hand_seen_on_few_frames_is_warned(ctx, tmp_path, capfd, engine_available):
    """'Right' on a mostly-left-hand video keys a few right-hand frames: the capture says so and how to fix it."""
    video = _mirror_cut(tmp_path / "mostly_left.mp4")
    assert bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), hands="RIGHT") == {"FINISHED"}
    out = capfd.readouterr().out
    assert "The right hand was found in only 4 of 24 frames" in out and "set Hands to Left or Both" in out, out
    assert bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), hands="BOTH") == {"FINISHED"}
    out = capfd.readouterr().out
    assert "The right hand was found in only 4 of 24 frames: check it is not a misdetection" in out, out
    assert "left hand was found" not in out


def test_side_coverage_notes(sub):
    from types import SimpleNamespace

    cj = sub("capture_job")
    take = SimpleNamespace(handedness=("right", "left"), rows={"track": np.array([0] * 15 + [1] * 200)})
    assert cj.side_coverage_notes(take, 210, "both") == [
        "The right hand was found in only 15 of 210 frames: check it is not a misdetection (delete its rig if so)."]
    assert cj.side_coverage_notes(take, 210, "left") == []
    one = SimpleNamespace(handedness=("left",), rows={"track": np.zeros(200, int)})
    assert cj.side_coverage_notes(one, 210, "both") == []  # one hand in the video: nothing to say
    assert "set Hands to Left or Both" in cj.side_coverage_notes(one, 210, "right")[0]


def test_capture_with_blend_relative_video_and_take_paths(ctx, tmp_path, engine_available):
    import shutil
    import warnings

    import dahyf

    video, _ = sample_video()
    shutil.copy(video, tmp_path / "clip.mp4")
    (tmp_path / "takes").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath="//clip.mp4", take_path="//takes/t.npz",
                                             use_frame_range=True, frame_start=0, frame_end=4)
    assert result == {"FINISHED"}
    assert not [w for w in caught if "relative" in str(w.message)], [str(w.message) for w in caught]
    take = dahyf.Take.load(tmp_path / "takes" / "t.npz")
    assert take.meta["source"] == str(tmp_path / "clip.mp4") and len(take) > 0


def test_the_panels_lens_sets_the_hands_distance_and_a_guess_is_said(ctx, tmp_path, capfd, engine_available):
    """The bundled clip was filmed with a 600 px focal (a 32.45 mm lens, 35 mm equivalent, on its
    640 x 480 frames) and carries no focal in its container. With Lens set in the panel the take uses
    that focal, says the artist gave it, and puts the wrist at the filmed distance (within 10 %); with
    Lens at 0 the engine guesses sqrt(W^2 + H^2) = 800 px, the hand lands a third too far, and the
    capture says the distance rests on a guess and how to fix it."""
    import dahyf
    from dahyf import sample_video as sv

    video, _ = sample_video()
    gt = sv.load_ground_truth()
    frames = (0, 12)
    true_z = float(np.median(gt["joints3d"][frames[0]:frames[1], 0, 2]))
    settings = ctx.scene.dahyf
    settings.lens_mm = 32.45
    assert bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), hands="RIGHT", use_frame_range=True,
                                       frame_start=frames[0], frame_end=frames[1],
                                       take_path=str(tmp_path / "lens.npz")) == {"FINISHED"}
    given = dahyf.Take.load(tmp_path / "lens.npz")
    assert given.focal == pytest.approx(600.0, rel=1e-3)
    assert given.meta["focal_source"] == "user" and "32.45 mm lens" in given.meta["focal_note"]
    assert abs(float(np.median(given.joints3d[:, 0, 2])) / true_z - 1) <= 0.10
    assert "rests on a guessed lens" not in capfd.readouterr().out
    settings.lens_mm = 0.0
    assert bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=str(video), hands="RIGHT", use_frame_range=True,
                                       frame_start=frames[0], frame_end=frames[1],
                                       take_path=str(tmp_path / "guess.npz")) == {"FINISHED"}
    guess = dahyf.Take.load(tmp_path / "guess.npz")
    assert guess.meta["focal_source"] == "default" and guess.focal == pytest.approx(800.0)
    assert float(np.median(guess.joints3d[:, 0, 2])) / true_z > 1.2
    out = capfd.readouterr().out
    assert "rests on a guessed lens (±40 %)" in out and "set Lens (35 mm equiv.)" in out, out
