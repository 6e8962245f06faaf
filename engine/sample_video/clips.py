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

Harder clips, made so that MediaPipe alone loses hands that are visible (coverage recovery, ghosts,
orientation continuity):

| clip | what it stresses |
|---|---|
| ``blur_swipe`` | fast swipes (~2 m/s) with a full-frame shutter: long motion blur |
| ``edge_enter`` | a hand rising into view from the bottom edge, fingers first, and leaving over the right edge |
| ``grip_bottle`` | a hand gripping a bottle that hides its palm while it turns |
| ``small_far`` | a hand walking away to 4.5 m (about 20 px tall) and back |
| ``hands_cross`` | a right and a left hand crossing in front of each other |
| ``edge_on_roll`` | a relaxed hand, fingers toward the camera, rolling through edge-on both ways |

Each clip is ``<name>.mp4`` + ``<name>_gt.npz`` in one folder (``benchmarks/fidelity_clips``):

- ``pose`` (H, T, 16, 3) rad, ``betas`` (H, 10), ``transl`` (H, T, 3) m, ``joints3d`` (H, T, 21, 3) m
  (OpenCV camera frame), ``joints2d`` (H, T, 21, 2) px, ``visible`` (H, T) bool (at least half of
  the keypoints inside the image and not hidden behind a held object or the outline of a nearer
  hand), ``sides`` (H,) 'right' / 'left' — H hands, T frames;
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
from ..hand.tables import SIDES
from .occlusion import cylinder_mesh, hidden_by_cylinder, hidden_by_nearer_hand
from .render import Look, forearm_mesh, render_clip, write_scene
from .script import (CONTROLS, FIST, POINT, RELAXED, _key, control_tracks, eased, global_rotations, model_digest,
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


@dataclass(frozen=True)
class Grip:
    """A bottle (a capped cylinder) held in the palm of hand ``hand``: its axis runs across the palm
    (index → little-finger knuckles), its centre ``radius + gap`` m out of the palm from the knuckles'
    mean; ``colour`` sRGB."""

    hand: int = 0
    radius: float = 0.022
    length: float = 0.2
    gap: float = 0.006
    colour: tuple = (0.12, 0.32, 0.55)


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
    grip: Grip | None = None


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
    clips += hard_clip_specs(fps)
    return clips


def _ease_path(*points):
    """A callable of time (s) through eased ``(time s, value)`` points (see ``script.eased``)."""
    return lambda s: eased(s, points)


def hard_clip_specs(fps: int = 30) -> list[Clip]:
    """The clips where MediaPipe alone loses visible hands (see the module docstring)."""
    clips = []
    # 7. Fast swipes right and back (peak ~2 m/s, 70 px per frame) with a full-frame shutter.
    n = 48
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, spread=0.5), _key(0.35, wrist_dev=0.0, roll=0.0), _key(0.55, wrist_dev=15.0, roll=30.0),
            _key(1.0, wrist_dev=15.0, roll=30.0, index=0.3, middle=0.3), _key(1.2, wrist_dev=-10.0, roll=-20.0),
            _key(1.6, wrist_dev=0.0, roll=0.0, index=0.06, middle=0.07)]
    x = _ease_path((0.0, -0.13), (0.35, -0.13), (0.55, 0.13), (1.0, 0.13), (1.2, -0.13), (1.6, -0.12))
    y = _ease_path((0.0, 0.06), (0.35, 0.06), (0.45, 0.03), (0.55, 0.06), (1.0, 0.06), (1.1, 0.03), (1.2, 0.06))
    clips.append(Clip("blur_swipe", n, [HandTrack("right", keys, _path(t, x, y, 0.5), 8 + 0 * t)], focal=560.0,
                      blur_subframes=8, shutter=1.0,
                      look=Look(background=((0.20, 0.19, 0.17), (0.42, 0.40, 0.36)), background_scale=4.0)))
    # 8. A hand rises into view from the bottom edge, fingers first (palm and wrist out of the frame),
    #    gestures, and leaves over the right edge.
    n = 54
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, spread=0.5), _key(0.6, OPEN), _key(1.0, POINT), _key(1.3, RELAXED, spread=0.5)]
    clips.append(Clip("edge_enter", n, [HandTrack("right", keys, _path(
        t, _ease_path((0.0, 0.03), (1.0, 0.03), (1.75, 0.27)), _ease_path((0.0, 0.25), (0.65, 0.07)), 0.45),
        _ease_path((0.0, 5.0), (1.0, 5.0), (1.75, -25.0))(t))], focal=500.0,
        look=Look(background=((0.14, 0.16, 0.20), (0.30, 0.33, 0.38)), background_scale=3.0)))
    # 9. A hand grips a bottle (lying across the palm, upright in the image) and turns it from the
    #    back of the hand to the palm side, where the bottle hides the palm.
    n = 54
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, **GRASP, roll=160.0), _key(0.9, roll=20.0), _key(1.2, roll=20.0), _key(1.8, roll=150.0)]
    clips.append(Clip("grip_bottle", n, [HandTrack("right", keys, _path(
        t, lambda s: -0.03 + 0.02 * np.sin(2 * s), lambda s: 0.02 + 0.01 * np.sin(3 * s), 0.42), 80 + 0 * t)],
        focal=520.0, grip=Grip(), look=Look(background=((0.28, 0.25, 0.20), (0.50, 0.46, 0.40)),
                                            background_scale=2.0)))
    # 10. A hand walks away from 0.55 m to 4.5 m (about 20 px tall) and comes back, gesturing.
    n = 60
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, **OPEN), _key(0.5, POINT), _key(1.1, OPEN), _key(1.5, FIST), _key(2.0, OPEN)]
    z = _ease_path((0.0, 0.55), (0.4, 0.55), (1.05, 4.5), (1.45, 4.5), (2.0, 0.7))
    clips.append(Clip("small_far", n, [HandTrack("right", keys, _path(
        t, lambda s: 0.02 + 0.03 * np.sin(2 * s), 0.05, z), -5 + 0 * t)], focal=500.0,
        look=Look(background=((0.18, 0.20, 0.16), (0.40, 0.42, 0.36)), background_scale=6.0)))
    # 11. A right and a left hand cross in front of each other (the right one nearer) and back.
    n = 54
    t = _times(n, fps)
    kr = [_key(0.0, RELAXED), _key(0.5, POINT), _key(1.0, OPEN), _key(1.5, GRASP), _key(1.8, RELAXED)]
    kl = [_key(0.0, RELAXED, **OPEN), _key(0.6, FIST), _key(1.1, RELAXED), _key(1.6, PINCH), _key(1.8, OPEN)]
    xr = _ease_path((0.0, -0.09), (0.35, -0.09), (0.85, 0.09), (1.15, 0.09), (1.65, -0.09))
    xl = _ease_path((0.0, 0.09), (0.35, 0.09), (0.85, -0.08), (1.15, -0.08), (1.65, 0.09))
    clips.append(Clip("hands_cross", n, [
        HandTrack("right", kr, _path(t, xr, 0.05, 0.45), -10 + 0 * t),
        HandTrack("left", kl, _path(t, xl, 0.08, 0.53), -5 + 0 * t)],
        focal=520.0, look=Look(background=((0.10, 0.12, 0.14), (0.30, 0.32, 0.34)), background_scale=3.0)))
    # 12. A relaxed hand, fingers tilted toward the camera, rolls through edge-on one way and the other.
    n = 48
    t = _times(n, fps)
    keys = [_key(0.0, RELAXED, index=0.2, middle=0.25, ring=0.3, pinky=0.3), _key(0.35, roll=88.0),
            _key(0.55, roll=88.0), _key(0.95, roll=-88.0), _key(1.15, roll=-88.0), _key(1.6, roll=0.0)]
    clips.append(Clip("edge_on_roll", n, [HandTrack("right", keys, _path(t, 0.0, 0.04, 0.42), 10 + 0 * t,
                                                    tilt_deg=25.0)], focal=500.0))
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


def grip_cylinder(keypoints: np.ndarray, side: str, grip: Grip) -> tuple[np.ndarray, np.ndarray]:
    """Where the bottle of ``grip`` sits for a posed hand: centres (N, 3) m and unit axes (N, 3).

    keypoints : (N, 21, 3) m, the hand's keypoints in camera coordinates (MediaPipe order).
    """
    from ..geometry import hand_frame

    kp = np.asarray(keypoints, np.float64)
    knuckles = kp[:, [5, 9, 13, 17]].mean(1)
    centre, axis = np.empty_like(knuckles), np.empty_like(knuckles)
    for i, k in enumerate(kp):
        F = hand_frame(k[0], k[5], k[9], k[17], "R" if side == "right" else "L")   # along, across, palm
        axis[i] = F[:, 1]
        centre[i] = knuckles[i] + F[:, 2] * (grip.radius + grip.gap) - F[:, 0] * 0.01
    return centre, axis


def make_clip(clip: Clip, models: dict) -> tuple[dict, list]:
    """Ground truth (see the module docstring) and renderer meshes of a clip.

    models : {'right': HandModel, 'left': HandModel} (open hand models).
    Returns (gt dict, meshes for ``render.write_scene``).
    """
    times = _times(clip.frames, clip.fps)
    S = clip.blur_subframes
    offsets = ((np.arange(S) + 0.5) / S - 0.5) * clip.shutter / clip.fps if S > 1 else np.zeros(1)
    gt = {k: [] for k in ("pose", "transl", "joints3d", "joints2d", "inside")}
    meshes, props = [], []
    W, H = clip.image_size
    T = clip.frames
    for h, hand in enumerate(clip.hands):
        model = models[hand.side]
        ctrl_t = control_tracks(times, hand.keys)
        sub = (times[:, None] + offsets[None]).ravel()
        ctrl_s = control_tracks(sub, hand.keys)
        wrist_s = np.stack([np.interp(sub, times, hand.wrist[:, k]) for k in range(3)], axis=1)
        lean_s = np.interp(sub, times, hand.lean)
        pose, transl, kp, _, _ = _pose_hand(model, ctrl_t, hand.wrist, hand.lean, hand.tilt_deg, hand.side)
        _, _, kp_s, verts, arm_rot = _pose_hand(model, ctrl_s, wrist_s, lean_s, hand.tilt_deg, hand.side)
        j2d = project(kp, clip.focal, clip.image_size)
        gt["pose"].append(pose)
        gt["transl"].append(transl)
        gt["joints3d"].append(kp)
        gt["joints2d"].append(j2d)
        gt["inside"].append((j2d[..., 0] >= 0) & (j2d[..., 0] < W) & (j2d[..., 1] >= 0) & (j2d[..., 1] < H))
        V = verts.shape[1]
        meshes.append((verts.reshape(T, S, V, 3), model.faces, 0))
        arm_rest, arm_faces = forearm_mesh(models["right"])
        wrist_rest = models["right"].rest_joints[0]
        rel = arm_rest - wrist_rest
        if hand.side == "left":
            rel, arm_faces = rel * np.array([-1.0, 1.0, 1.0]), arm_faces[:, ::-1]
        arm = np.einsum("tij,vj->tvi", arm_rot, rel) + wrist_s[:, None, :]
        meshes.append((arm.reshape(T, S, -1, 3), arm_faces, 1))
        if clip.grip is not None and clip.grip.hand == h:
            g = clip.grip
            c_s, a_s = grip_cylinder(kp_s, hand.side, g)
            verts_c, faces_c = cylinder_mesh(c_s, a_s, g.radius, g.length)
            meshes.append((verts_c.reshape(T, S, -1, 3), faces_c, 0, g.colour))
            props.append((g,) + grip_cylinder(kp, hand.side, g))
    j3d, j2d = np.stack(gt["joints3d"]), np.stack(gt["joints2d"])
    shown = np.stack(gt.pop("inside")) & ~hidden_by_nearer_hand(j2d, j3d)
    for g, centre, axis in props:
        shown &= ~hidden_by_cylinder(j3d.reshape(-1, 21, 3), np.repeat(centre[None], len(j3d), 0).reshape(-1, 3),
                                     np.repeat(axis[None], len(j3d), 0).reshape(-1, 3), g.radius,
                                     g.length).reshape(shown.shape)
    out = {k: np.stack(v).astype(np.float32) for k, v in gt.items()}
    out.update(visible=shown.mean(-1) >= VISIBLE_SHARE, keypoints_shown=shown,
               betas=np.zeros((len(clip.hands), 10), np.float32), sides=np.array([h.side for h in clip.hands]),
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
    models = {s: load_hand_model("open", s) for s in SIDES}
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
    if frames is None:   # the clips rendered now replace their entries; the others stay
        path = out_dir / "render_summary.json"
        before = json.loads(path.read_text()) if path.is_file() else {}
        atomic_write_text(path, json.dumps({**before, **summary}, indent=1) + "\n")
    return summary


__all__ = ["CLIPS_DIR", "CONTROLS", "Clip", "HandTrack", "clip_by_name", "clip_paths", "clip_specs",
           "generate_clips", "load_clip_gt", "make_clip"]
