"""Helpers shared by the add-on tests (constructed takes, scene fingerprints)."""
from __future__ import annotations

import os

import bpy
import numpy as np
import pytest


def scene_fingerprint():
    """What a failed capture must leave unchanged."""
    s = bpy.context.scene
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(c.name for c in bpy.data.cameras), sorted(m.name for m in bpy.data.movieclips),
            sorted(c.name for c in bpy.data.collections), s.render.fps, s.render.fps_base, s.frame_start,
            s.frame_end, s.render.resolution_x, s.render.resolution_y, s.camera.name if s.camera else None)


def make_take(poses_by_track: dict, fps=30.0, image_size=(1280, 720), focal=1468.6, source="", seed=0):
    """A real dahyf.Take whose rows come from the given poses (track -> (side, pose (N,16,3), betas (10,), transl (N,3)))."""
    from dahyf.capture.take import ROW_FIELDS, Take

    rng = np.random.default_rng(seed)
    parts = []
    handed = []
    for t, (side, pose, betas, transl) in sorted(poses_by_track.items()):
        n = len(pose)
        handed.append(side)
        conf = rng.uniform(0.2, 1.0, n)
        part = {k: np.zeros((n,) + shape, dtype=dt) for k, (shape, dt) in ROW_FIELDS.items()}
        part.update(track=np.full(n, t, np.int32), frame=np.arange(n, dtype=np.int64) + 3,
                    time_s=(np.arange(n) + 3) / fps, pose=pose.astype(np.float32),
                    betas=np.repeat(np.asarray(betas, np.float32)[None], n, 0), transl=transl.astype(np.float32),
                    confidence=conf.astype(np.float32), filled=conf < 0.4)
        parts.append(part)
    rows = {k: np.concatenate([p[k] for p in parts]) for k in ROW_FIELDS}
    return Take(fps, image_size, focal, tuple(handed), rows, {"source": source})


def random_hand_poses(n: int, seed: int = 0):
    """(n, 16, 3) plausible poses: global orientation anywhere, finger joints within ±0.6 rad."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.3, (n, 16, 3))
    pose[:, 0] = rng.normal(0, 1.0, (n, 3))
    return pose


def require_engine():
    """Gate of the capture tests: the bundled engine (or ``$DAHYF_TEST_CHECKPOINT``) must load.

    Skips only when there is no checkpoint file to try and this is not CI (``$CI`` unset): a
    clone without the asset. A checkpoint that is there but does not load *fails* — a broken
    engine must not turn every capture test into a skip.
    """
    import dahyf
    from dahyf.capture.engine import DEFAULT_CHECKPOINT

    path = os.environ.get("DAHYF_TEST_CHECKPOINT") or str(DEFAULT_CHECKPOINT)
    if not os.path.isfile(path):
        message = f"the capture engine's checkpoint {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(message + " (on CI every capture test must run)", pytrace=False)
        pytest.skip(message)
    try:
        dahyf.load_engine(path, device="cpu")
    except Exception as exc:
        pytest.fail(f"the capture engine {path} does not load: {type(exc).__name__}: {exc}", pytrace=False)


class LayoutRecorder:
    """Stands in for a panel's ``UILayout`` (there is none without a window): records what is drawn."""

    def __init__(self):
        self.drawn: list[tuple] = []

    def column(self, **_kw):
        return self

    def row(self, **_kw):
        return self

    def operator(self, idname, **kw):
        self.drawn.append(("operator", idname, kw.get("text")))
        return type("OperatorProperties", (), {})()

    def progress(self, factor=0.0, type="BAR", text=""):  # noqa: A002 - UILayout.progress's own keyword
        self.drawn.append(("progress", factor, text))


def sample_video():
    """The bundled sample clip (a right hand) and its ground truth."""
    from dahyf.sample_video import SAMPLE_GT, SAMPLE_VIDEO

    if not SAMPLE_VIDEO.is_file():
        pytest.skip(f"the bundled sample clip {SAMPLE_VIDEO} is missing")
    return SAMPLE_VIDEO, SAMPLE_GT


def camera_ray_hits(ctx, cam, n=9):
    """Objects hit first by rays from the scene camera through an n×n grid over its whole image."""
    scene = ctx.scene
    depsgraph = ctx.evaluated_depsgraph_get()
    frame = [cam.matrix_world @ v for v in cam.data.view_frame(scene=scene)]  # image corners, world
    origin = cam.matrix_world.translation
    hits = []
    for u in np.linspace(0.01, 0.99, n):
        for v in np.linspace(0.01, 0.99, n):
            top = frame[3].lerp(frame[0], u)  # view_frame: top-right, bottom-right, bottom-left, top-left
            bottom = frame[2].lerp(frame[1], u)
            direction = (bottom.lerp(top, v) - origin).normalized()
            hit, _, _, _, obj, _ = scene.ray_cast(depsgraph, origin, direction, distance=cam.data.clip_end)
            hits.append(obj.name if hit else None)
    return hits


def assert_hands_seen_over_the_video(ctx, arms):
    """From the capture camera nothing but the take's hands is in view, and the hands are in view."""
    cam = ctx.scene.camera
    meshes = {o.name for arm in arms for o in arm.children if o.type == "MESH"}
    hits = camera_ray_hits(ctx, cam)
    assert set(hits) <= meshes | {None}, f"in front of the video: {sorted(set(hits) - meshes - {None})}"
    depsgraph = ctx.evaluated_depsgraph_get()
    origin = cam.matrix_world.translation
    for arm in arms:
        target = arm.matrix_world @ arm.pose.bones["middle1"].head
        hit, _, _, _, obj, _ = ctx.scene.ray_cast(depsgraph, origin, (target - origin).normalized(),
                                                  distance=cam.data.clip_end)
        assert hit and obj.name in meshes, (arm.name, obj.name if hit else None)
