"""Importing takes from elsewhere: Blender-relative paths, the recorded video, broken takes.

A take is a file anyone may hand over: its recorded source is used only as a file name next to
the take, and any error ends in a report with the scene as it was. No capture engine needed.
"""
from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_helpers import make_take, random_hand_poses, sample_video, scene_fingerprint  # noqa: E402

pytestmark = pytest.mark.blender


def _take(source="", n=5, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return make_take({0: ("right", random_hand_poses(n, seed), rng.normal(0, 1, 10),
                          np.c_[rng.normal(0, 0.03, (n, 2)), np.full(n, 0.6)])}, source=source, seed=seed, **kw)


def _clip_paths():
    return sorted(os.path.realpath(bpy.path.abspath(c.filepath)) for c in bpy.data.movieclips)


def test_blend_relative_take_and_video_paths(ctx, tmp_path):
    """'//' paths (what Blender's file browser gives with 'Relative Path' on) resolve against the
    saved .blend, without Blender's warning that the property does not support them."""
    video, _ = sample_video()
    (tmp_path / "takes").mkdir()
    shutil.copy(video, tmp_path / "clip.mp4")
    _take().save(tmp_path / "takes" / "t.npz")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert bpy.ops.dahyf.import_take(filepath="//takes/t.npz", video="//clip.mp4") == {"FINISHED"}
        ctx.scene.dahyf.video = "//clip.mp4"
    assert not [w for w in caught if "relative" in str(w.message)], [str(w.message) for w in caught]
    assert _clip_paths() == [os.path.realpath(tmp_path / "clip.mp4")]


def test_blend_relative_path_without_a_saved_blend_says_to_save_first(ctx, tmp_path):
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match=r"//t.npz is relative to the .blend file .* save the .blend first"):
        bpy.ops.dahyf.import_take(filepath="//t.npz")
    assert scene_fingerprint() == before


@pytest.mark.parametrize("recorded", ["/somewhere/else/clip.mp4", r"C:\Users\someone\Videos\clip.mp4",
                                      r"\\host\share\clip.mp4", "clip.mp4"])
def test_the_video_is_found_next_to_a_take_from_another_folder_or_machine(ctx, tmp_path, monkeypatch, recorded):
    """The CLI records the video as it was given (relative to its working folder, or a path on
    another machine): the import finds the file of that name next to the take — not one of that
    name in Blender's working folder."""
    video, _ = sample_video()
    (tmp_path / "takes").mkdir()
    shutil.copy(video, tmp_path / "takes" / "clip.mp4")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "clip.mp4").write_bytes(b"a decoy, not the take's video")
    monkeypatch.chdir(tmp_path / "cwd")
    path = _take(source=recorded).save(tmp_path / "takes" / "t.npz")
    assert bpy.ops.dahyf.import_take(filepath=str(path)) == {"FINISHED"}
    assert _clip_paths() == [os.path.realpath(tmp_path / "takes" / "clip.mp4")]


@pytest.mark.parametrize("recorded", ["/etc/passwd", r"\\attacker.example\share\clip.mp4", "../clip.mp4/..", "C:"])
def test_a_recorded_source_is_never_opened_as_a_path(ctx, tmp_path, capfd, recorded):
    """A take may name any file: nothing outside the take's folder is opened (on Windows a UNC path
    would contact the host); the import says how to set the video instead."""
    path = _take(source=recorded).save(tmp_path / "t.npz")
    assert bpy.ops.dahyf.import_take(filepath=str(path)) == {"FINISHED"}
    assert len(bpy.data.movieclips) == 0 and not ctx.scene.camera.data.background_images
    out = capfd.readouterr()
    assert "'Video'" in out.out + out.err


def test_import_without_its_video_says_how_to_get_the_background(ctx, tmp_path, capfd):
    path = _take(source=str(tmp_path / "moved_away.mp4")).save(tmp_path / "t.npz")
    assert bpy.ops.dahyf.import_take(filepath=str(path)) == {"FINISHED"}
    assert not ctx.scene.camera.data.background_images
    out = capfd.readouterr()
    assert "(moved_away.mp4) was not found next to the take" in out.out + out.err and "'Video'" in out.out + out.err


def test_a_video_field_that_names_no_file_is_an_error(ctx, tmp_path):
    path = _take().save(tmp_path / "t.npz")
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match="Video not found: .*nothing.mp4"):
        bpy.ops.dahyf.import_take(filepath=str(path), video=str(tmp_path / "nothing.mp4"))
    assert scene_fingerprint() == before


def _everything():
    return scene_fingerprint(), {k: sorted(getattr(bpy.data, k).keys()) for k in
                                 ("cameras", "meshes", "armatures", "materials", "objects", "actions")}


@pytest.mark.parametrize("broken", ["image_size", "focal", "fps", "rig"])
def test_a_take_that_breaks_half_way_is_reported_and_leaves_nothing(ctx, tmp_path, sub, broken):
    """Errors after the import started creating things (a zero image size, focal or fps; a failure
    while building a rig) are reported, and every datablock made so far — the camera's data too
    — is removed."""
    ops_import = sub("ops_import")
    take = _take()
    if broken in ("image_size", "focal", "fps"):  # a take as a hostile file could hold it (set after the rows)
        setattr(take, broken, {"image_size": (0, 0), "focal": 0.0, "fps": 0.0}[broken])
    before = _everything()
    if broken == "rig":  # a failure inside the rig builder, after its armature and mesh exist
        rig = sub("rig")
        real = rig._skin_material
        rig._skin_material = lambda: (_ for _ in ()).throw(RuntimeError("rig builder failed"))
    try:
        with pytest.raises(ops_import.engine_api.UserError):
            ops_import.apply_take(ctx, take, str(tmp_path / "t.npz"))
    finally:
        if broken == "rig":
            rig._skin_material = real
    assert _everything() == before
