"""Helpers shared by the add-on tests (constructed takes, scene fingerprints)."""
from __future__ import annotations

import bpy
import numpy as np


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
