"""The fidelity clips: short Cycles-rendered clips of the open hand model with exact ground truth,
each made to stress one thing the fidelity benchmark (``dahyf bench fidelity``) measures.

| clip | what it stresses |
|---|---|
| ``open_edge_turn`` | an open, flat hand turning edge-on and back (straight fingers, palm flips) |
| ``two_hands`` | a right and a left hand close together (ghost rows, wrong-side tracks) |
| ``fast_blur`` | a fast wave across the frame with motion blur (coverage, smoothing lag) |
| ``edge_cut`` | a hand sliding out over the frame edge and back (coverage) |
| ``dark_gestures`` | darker skin, dim light, patterned background, long focal: pinch, point, fist, spread |
| ``wide_near`` | a wide head-mounted-like camera, a near hand seen from the back, grasping (depth, focal) |

Each clip is ``<name>.mp4`` + ``<name>_gt.npz`` in one folder (``benchmarks/fidelity_clips``):

- ``pose`` (H, T, 16, 3) rad, ``betas`` (H, 10), ``transl`` (H, T, 3) m, ``joints3d`` (H, T, 21, 3) m
  (OpenCV camera frame), ``joints2d`` (H, T, 21, 2) px, ``visible`` (H, T) bool (at least half of
  the keypoints inside the image), ``sides`` (H,) 'right' / 'left' — H hands, T frames;
- ``focal`` px (never given to the engine by the benchmark), ``image_size`` (W, H), ``fps``,
  ``name``, ``model_digest``.

Left hands are the mirror image (x → −x) of a scripted right hand, posed with the left model.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fileio import atomic_write, atomic_write_text
from ..hand.mirror import mirror_pose
from .render import Look, forearm_mesh, render_clip, write_scene
from .script import (CONTROLS, FIST, POINT, RELAXED, _key, control_tracks, global_rotations, model_digest,
                     pose_from_controls, project, rotation_to_axis_angle)

REPO = Path(__file__).resolve().parent.parent.parent
#: Where the rendered clips live (repository only; not shipped).
CLIPS_DIR = REPO / "benchmarks" / "fidelity_clips"
#: Render settings of the clips: Cycles samples per pixel (per motion-blur sub-frame: half of it).
SAMPLES = 10
#: A hand counts as visible in a frame when at least this share of its keypoints is in the image.
VISIBLE_SHARE = 0.5

OPEN = dict(index=0.0, middle=0.0, ring=0.0, pinky=0.0, spread=0.45, thumb_curl=0.0, thumb_oppose=0.0)
PINCH = dict(index=0.55, middle=0.15, ring=0.15, pinky=0.2, spread=0.3, thumb_curl=0.45, thumb_oppose=0.75)
GRASP = dict(index=0.5, middle=0.55, ring=0.6, pinky=0.6, spread=0.2, thumb_curl=0.4, thumb_oppose=0.7)


@dataclass
class HandTrack:
    """One scripted hand: side, gesture keys (time s, controls), wrist path (T, 3) m, in-image lean
    (T,) deg, tilt deg (see ``script.global_rotations``)."""

    side: str
    keys: list
    wrist: np.ndarray
    lean: np.ndarray
    tilt_deg: float = -12.0


@dataclass
class Clip:
    """A fidelity clip: its hands and how it is filmed."""

    name: str
    frames: int
    hands: list[HandTrack]
    focal: float
    image_size: tuple[int, int] = (480, 360)
    fps: int = 30
    look: Look = field(default_factory=Look)
    #: Motion-blur sub-frame samples over the shutter (1 = no blur) and the shutter (frames).
    blur_subframes: int = 1
    shutter: float = 0.5


def _times(n: int, fps: int) -> np.ndarray:
    return np.arange(n) / fps


def _path(times, x, y, z) -> np.ndarray:
    """(T, 3) wrist path from callables or constants of time."""
    f = lambda v: np.broadcast_to(v(times) if callable(v) else np.float64(v), times.shape)  # noqa: E731
    return np.stack([f(x), f(y), f(z)], axis=1)


def clip_specs() -> list[Clip]:
    """The fidelity clips (deterministic). Times in seconds; poses from ``script`` controls."""
    fps = 30
    clips = []
    # 1. An open, flat hand turns edge-on (forearm roll to 88 deg) and back, then the other way.
    n = 48
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, **OPEN), _key(0.5, roll=88.0), _key(0.8, roll=88.0), _key(1.2, roll=-40.0),
            _key(1.6, roll=0.0)]
    clips.append(Clip("open_edge_turn", n, [HandTrack("right", keys, _path(t, -0.02, 0.05, 0.42), 6 + 0 * t)],
                      focal=500.0))
    # 2. Two hands side by side (the person's right hand on the image's left), curling in turn.
    n = 48
    t = _times(n, fps)
    kr = [_key(0.0, RELAXED), _key(0.4, FIST), _key(0.8, RELAXED, spread=0.6), _key(1.3, POINT), _key(1.6, RELAXED)]
    kl = [_key(0.0, RELAXED, **OPEN), _key(0.5, PINCH), _key(1.0, OPEN), _key(1.4, GRASP), _key(1.6, OPEN)]
    look = Look(background=((0.10, 0.09, 0.08), (0.35, 0.30, 0.24)), background_scale=3.0)
    clips.append(Clip("two_hands", n, [
        HandTrack("right", kr, _path(t, lambda s: -0.075 + 0.01 * np.sin(4 * s), 0.06, 0.5), -8 + 0 * t),
        HandTrack("left", kl, _path(t, lambda s: 0.075 - 0.01 * np.sin(3 * s), 0.06, 0.52), -8 + 0 * t)],
        focal=520.0, look=look))
    # 3. A fast wave across the frame (about 1 m/s) with motion blur.
    n = 40
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, spread=0.55), _key(0.45, wrist_dev=25.0, roll=-30.0, index=0.3),
            _key(0.9, wrist_dev=-20.0, roll=30.0, index=0.0), _key(1.33, wrist_dev=0.0, roll=0.0)]
    clips.append(Clip("fast_blur", n, [HandTrack("right", keys, _path(
        t, lambda s: -0.15 * np.cos(2 * np.pi * s / 1.33), lambda s: 0.05 + 0.03 * np.sin(4 * np.pi * s / 1.33), 0.5),
        15 * np.sin(2 * np.pi * t / 1.33))], focal=560.0, blur_subframes=3, shutter=0.5,
        look=Look(background=((0.22, 0.22, 0.20), (0.45, 0.44, 0.40)), background_scale=5.0)))
    # 4. A hand slides out over the left frame edge (fingers cut) and comes back.
    n = 48
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED), _key(0.5, POINT), _key(1.0, OPEN), _key(1.6, RELAXED)]
    clips.append(Clip("edge_cut", n, [HandTrack("right", keys, _path(
        t, lambda s: -0.06 - 0.12 * np.sin(np.pi * s / 1.6) ** 2, 0.07, 0.45), -60 * np.sin(np.pi * t / 1.6) ** 2)],
        focal=500.0))
    # 5. Darker skin, dimmer light, a busy background and a long focal: fine gestures.
    n = 60
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED), _key(0.35, PINCH), _key(0.7, POINT), _key(1.05, FIST), _key(1.4, OPEN),
            _key(1.7, RELAXED), _key(2.0, GRASP)]
    look = Look(skin_light=(0.50, 0.33, 0.24), skin_dark=(0.40, 0.26, 0.19), light_scale=0.7, ambient=0.15,
                background=((0.05, 0.12, 0.10), (0.30, 0.42, 0.35)), background_scale=8.0)
    clips.append(Clip("dark_gestures", n, [HandTrack("right", keys, _path(t, 0.01, 0.06, 0.85), -4 + 0 * t)],
                      focal=950.0, look=look))
    # 6. A wide head-mounted-like camera: a near hand seen from the back, fingers away, grasping.
    n = 48
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, roll=150.0), _key(0.5, GRASP), _key(0.9, OPEN, roll=120.0),
            _key(1.3, GRASP, wrist_flex=20.0), _key(1.6, RELAXED, roll=150.0)]
    clips.append(Clip("wide_near", n, [HandTrack("right", keys, _path(
        t, lambda s: 0.06 + 0.03 * np.sin(2 * s), 0.09, lambda s: 0.32 + 0.03 * np.sin(3 * s)), 20 + 0 * t,
        tilt_deg=-35.0)], focal=300.0, look=Look(background=((0.30, 0.27, 0.22), (0.55, 0.50, 0.44)),
                                                   background_scale=2.5, light_scale=1.2)))
    return clips


def clip_by_name(name: str) -> Clip:
    for c in clip_specs():
        if c.name == name:
            return c
    raise KeyError(f"no fidelity clip {name!r}; clips: {', '.join(c.name for c in clip_specs())}")


def _pose_hand(model, ctrl, wrist, lean, tilt_deg, side: str):
    """Posed keypoints, vertices and forearm rotation of one hand at the given samples.

    Returns (pose (T, 16, 3), transl (T, 3), keypoints (T, 21, 3), vertices (T, V, 3), arm (T, 3, 3));
    for a left hand everything is the mirror image of the scripted right hand (``model`` is the left one).
    """
    import torch

    rest = model.rest_joints * (np.array([-1.0, 1.0, 1.0]) if side == "left" else 1.0)  # right-hand rest joints
    pose = pose_from_controls(ctrl, rest)
    arm, hand = global_rotations(ctrl, lean, rest, tilt_deg=tilt_deg)
    pose[:, 0] = rotation_to_axis_angle(hand)
    M = np.diag([-1.0, 1.0, 1.0])
    if side == "left":
        pose, arm = mirror_pose(pose), M @ arm @ M
    with torch.no_grad():
        betas = torch.zeros(len(pose), 10, dtype=torch.float64)
        j0 = model(torch.zeros(1, 16, 3, dtype=torch.float64), betas[:1]).joints[0, 0].numpy()
        transl = wrist - j0   # global orientation rotates about the wrist joint
        out = model(torch.tensor(pose), betas, torch.tensor(transl))
    return pose, transl, out.keypoints.numpy(), out.vertices.numpy(), arm


def make_clip(clip: Clip, models: dict) -> tuple[dict, list]:
    """Ground truth (see the module docstring) and renderer meshes of a clip.

    models : {'right': HandModel, 'left': HandModel} (open hand models).
    Returns (gt dict, meshes for ``render.write_scene``).
    """
    times = _times(clip.frames, clip.fps)
    S = clip.blur_subframes
    offsets = ((np.arange(S) + 0.5) / S - 0.5) * clip.shutter / clip.fps if S > 1 else np.zeros(1)
    gt = {k: [] for k in ("pose", "transl", "joints3d", "joints2d", "visible")}
    meshes = []
    W, H = clip.image_size
    for hand in clip.hands:
        model = models[hand.side]
        ctrl_t = control_tracks(times, hand.keys)
        sub = (times[:, None] + offsets[None]).ravel()
        ctrl_s = control_tracks(sub, hand.keys)
        wrist_s = np.stack([np.interp(sub, times, hand.wrist[:, k]) for k in range(3)], axis=1)
        lean_s = np.interp(sub, times, hand.lean)
        pose, transl, kp, _, _ = _pose_hand(model, ctrl_t, hand.wrist, hand.lean, hand.tilt_deg, hand.side)
        _, _, _, verts, arm_rot = _pose_hand(model, ctrl_s, wrist_s, lean_s, hand.tilt_deg, hand.side)
        j2d = project(kp, clip.focal, clip.image_size)
        inside = (j2d[..., 0] >= 0) & (j2d[..., 0] < W) & (j2d[..., 1] >= 0) & (j2d[..., 1] < H)
        gt["pose"].append(pose)
        gt["transl"].append(transl)
        gt["joints3d"].append(kp)
        gt["joints2d"].append(j2d)
        gt["visible"].append(inside.mean(-1) >= VISIBLE_SHARE)
        T, V = clip.frames, verts.shape[1]
        meshes.append((verts.reshape(T, S, V, 3), model.faces, 0))
        arm_rest, arm_faces = forearm_mesh(models["right"])
        wrist_rest = models["right"].rest_joints[0]
        rel = arm_rest - wrist_rest
        if hand.side == "left":
            rel, arm_faces = rel * np.array([-1.0, 1.0, 1.0]), arm_faces[:, ::-1]
        arm = np.einsum("tij,vj->tvi", arm_rot, rel) + wrist_s[:, None, :]
        meshes.append((arm.reshape(T, S, -1, 3), arm_faces, 1))
    out = {k: np.stack(v).astype(np.float32) if k != "visible" else np.stack(v) for k, v in gt.items()}
    out.update(betas=np.zeros((len(clip.hands), 10), np.float32), sides=np.array([h.side for h in clip.hands]),
               focal=np.float32(clip.focal), image_size=np.array(clip.image_size, np.int32),
               fps=np.float32(clip.fps), name=np.array(clip.name), model_digest=np.array(model_digest(models["right"])))
    return out, meshes


def load_clip_gt(path: str | Path) -> dict[str, np.ndarray]:
    """Read a fidelity clip's ``<name>_gt.npz``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: render the clips with "
                                f"`python -m dahyf.sample_video --clips {path.parent}`.")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def clip_paths(folder: str | Path = CLIPS_DIR) -> list[tuple[Path, Path]]:
    """(video, gt) of every rendered clip present in ``folder``, in :func:`clip_specs` order."""
    folder = Path(folder)
    return [(folder / f"{c.name}.mp4", folder / f"{c.name}_gt.npz") for c in clip_specs()
            if (folder / f"{c.name}.mp4").is_file() and (folder / f"{c.name}_gt.npz").is_file()]


def generate_clips(out_dir: Path, work_dir: Path | None = None, only: list[str] | None = None,
                   frames: list[int] | None = None, samples: int = SAMPLES, log=print) -> dict:
    """Render the fidelity clips (or ``only`` some) into ``out_dir``; frames cached in ``work_dir``."""
    from ..hand.model import load_hand_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "dahyf_fidelity_render"
    work_dir.mkdir(parents=True, exist_ok=True)
    models = {s: load_hand_model("open", s) for s in ("right", "left")}
    summary = {}
    for clip in clip_specs():
        if only and clip.name not in only:
            continue
        t0 = time.perf_counter()
        gt, meshes = make_clip(clip, models)
        scene = work_dir / f"{clip.name}_scene.npz"
        digest = write_scene(meshes, clip.focal, clip.image_size, scene, samples, False, clip.look)
        log(f"{clip.name}: {clip.frames} frames, {len(clip.hands)} hand(s), focal {clip.focal:g} px, "
            f"{samples} samples, {clip.blur_subframes} sub-frame(s)")
        s = render_clip(scene, digest, clip.frames, clip.fps, work_dir,
                        None if frames is not None else out_dir / f"{clip.name}.mp4", frames=frames, log=log)
        if frames is None:
            with atomic_write(out_dir / f"{clip.name}_gt.npz") as fh:
                np.savez_compressed(fh, **gt)
        summary[clip.name] = {**s, "wall_s": time.perf_counter() - t0}
    if frames is None and not only:
        atomic_write_text(out_dir / "render_summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


__all__ = ["CLIPS_DIR", "CONTROLS", "Clip", "HandTrack", "clip_by_name", "clip_paths", "clip_specs",
           "generate_clips", "load_clip_gt", "make_clip"]
