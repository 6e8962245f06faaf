"""The product's own sample video: a rendered open-hand clip with its ground-truth poses.

``python -m dahyf.sample_video --out engine/assets/sample`` regenerates
``open_hand_sample.mp4`` and ``open_hand_sample_gt.npz`` from the bundled open hand model only
(no third-party media): a scripted gesture sequence (open hand, each finger curling, thumb
opposition, fist, pointing, a wave with wrist rotation, translation across the frame) is turned
into MANO poses θ here, the posed meshes are rendered headless with Blender Cycles by
``dahyf_blender/render_sample.py`` (a separate process, so this module never imports Blender),
and the frames are encoded to H.264.

The ground truth is exact and deterministic; the rendered pixels are deterministic up to the
floating-point order of Cycles' threads.

Conventions of the ground-truth file (all per frame ``t``):

- ``pose`` (T, 16, 3) rad, MANO axis-angle, ``flat_hand_mean=True``; ``betas`` (10,);
  ``transl`` (T, 3) m; the open hand model's output with these is in OpenCV camera coordinates
  (x right, y down, z forward, metres).
- ``focal`` px, ``principal_point`` (2,) px = image centre, ``image_size`` (W, H), ``fps``, ``side``.
- ``joints3d`` (T, 21, 3) m, keypoints in FreiHAND/MediaPipe order; ``joints2d`` (T, 21, 2) px,
  ``u = focal * x / z + W / 2`` (pixel ``i`` spans ``[i, i+1)``, as MediaPipe's ``x * W``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .assets import SAMPLE_DIR, SAMPLE_VIDEO
from .geometry import hand_size as hand_size_px
from .geometry import procrustes_align, project_points
from .hand.kinematics import batch_rodrigues as rodrigues
from .hand.kinematics import matrix_to_axis_angle as rotation_to_axis_angle
from .hand.tables import FINGER_JOINTS, JOINT_NAMES, NUM_KEYPOINTS

#: Image size (W, H) px, frame rate, and focal length px of the sample clip's camera.
IMAGE_SIZE = (640, 480)
FPS = 30
FOCAL = 600.0
#: Clip length in seconds.
DURATION_S = 7.0
#: File names inside the output folder.
VIDEO_NAME = SAMPLE_VIDEO.name
GT_NAME = "open_hand_sample_gt.npz"

REPO = Path(__file__).resolve().parent.parent
RENDER_SCRIPT = REPO / "dahyf_blender" / "render_sample.py"
DEFAULT_OUT = SAMPLE_DIR
#: The shipped ground truth of the clip (SAMPLE_VIDEO: dahyf.assets).
SAMPLE_GT = DEFAULT_OUT / GT_NAME

#: Flexion limits per finger joint (MCP, PIP, DIP) at curl = 1, degrees (inside the usual
#: active ranges: MCP 0-90, PIP 0-110, DIP 0-80).
CURL_DEG = {
    "index": (70.0, 95.0, 60.0),
    "middle": (75.0, 98.0, 62.0),
    "ring": (78.0, 100.0, 60.0),
    "pinky": (82.0, 100.0, 58.0),
}
#: Abduction at the MCP joint at spread = 1, degrees, positive toward the little finger.
SPREAD_DEG = {"index": -12.0, "middle": -2.0, "ring": 7.0, "pinky": 16.0}
FINGERS4 = ("index", "middle", "ring", "pinky")

# ---------------------------------------------------------------------------------------------
# The gesture script
# ---------------------------------------------------------------------------------------------

#: Scalar controls of the gesture script. Curls in [0, 1]; angles in degrees.
CONTROLS = (
    "index", "middle", "ring", "pinky",       # finger curl, 0 straight, 1 fist
    "spread",                                  # finger abduction, 0 together, 1 spread
    "thumb_curl", "thumb_oppose",              # thumb MCP/IP flexion, CMC opposition
    "wrist_flex", "wrist_dev",                 # wrist: + palmar flexion, + ulnar deviation (deg)
    "roll",                                    # forearm pronation (+) / supination (-) (deg)
)

RELAXED = dict(index=0.06, middle=0.07, ring=0.08, pinky=0.09, spread=0.35,
               thumb_curl=0.1, thumb_oppose=0.1, wrist_flex=0.0, wrist_dev=0.0, roll=0.0)
FIST = dict(index=1.0, middle=1.0, ring=1.0, pinky=1.0, spread=0.0, thumb_curl=0.85, thumb_oppose=0.55)
POINT = dict(index=0.0, middle=1.0, ring=1.0, pinky=1.0, spread=0.1, thumb_curl=0.8, thumb_oppose=0.6)


def _key(t: float, base: dict | None = None, **changes) -> tuple[float, dict]:
    d = dict(base or {})
    d.update(changes)
    return (t, d)


def gesture_keys() -> list[tuple[float, dict]]:
    """Keyframes ``(time s, {control: value})`` of the gesture script; unset controls hold.

    Written on an 8 s timeline and scaled to ``DURATION_S``.
    """
    k = [_key(0.0, RELAXED)]
    # Each finger curls and straightens in turn (overlapping a little, as real hands do).
    for i, f in enumerate(FINGERS4):
        t0 = 0.45 + 0.6 * i
        k += [_key(t0, **{f: RELAXED[f]}), _key(t0 + 0.4, **{f: 1.0}), _key(t0 + 0.8, **{f: RELAXED[f]})]
    # Thumb opposition: the thumb tip travels across the palm toward the little finger's base.
    k += [_key(3.05, thumb_curl=0.1, thumb_oppose=0.1), _key(3.55, thumb_curl=0.45, thumb_oppose=1.0),
          _key(3.8, thumb_curl=0.45, thumb_oppose=1.0), _key(4.2, thumb_curl=0.1, thumb_oppose=0.1)]
    # Fist, pointing, open again.
    k += [_key(4.25, **{c: RELAXED[c] for c in FIST}), _key(4.75, FIST), _key(5.0, FIST),
          _key(5.45, POINT), _key(5.8, POINT), _key(6.25, {c: RELAXED[c] for c in FIST}, spread=0.6)]
    # Wave: wrist deviation back and forth with forearm rotation.
    t = 6.25
    for dev, roll, flex in ((-18.0, -35.0, -10.0), (22.0, 30.0, 8.0), (-18.0, -35.0, -10.0), (22.0, 30.0, 8.0)):
        t += 0.3
        k.append(_key(t, wrist_dev=dev, roll=roll, wrist_flex=flex))
    k.append(_key(8.0, wrist_dev=0.0, roll=0.0, wrist_flex=0.0, spread=0.35))
    return [(t * DURATION_S / 8.0, d) for t, d in k]


def _ease(s: np.ndarray) -> np.ndarray:
    """Smoothstep easing on [0, 1] (zero velocity at both ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def control_tracks(times: np.ndarray, keys: list[tuple[float, dict]] | None = None) -> dict[str, np.ndarray]:
    """Sample every control at ``times`` (s): eased interpolation between the keys that set it.

    Returns ``{control: (T,) values}``.
    """
    keys = gesture_keys() if keys is None else keys
    out = {}
    for c in CONTROLS:
        pts = sorted((t, d[c]) for t, d in keys if c in d)
        kt = np.array([p[0] for p in pts])
        kv = np.array([p[1] for p in pts])
        i = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(kt) - 1)
        j = np.minimum(i + 1, len(kt) - 1)
        span = np.where(j > i, kt[j] - kt[i], 1.0)
        s = _ease((times - kt[i]) / span)
        out[c] = kv[i] + (kv[j] - kv[i]) * np.where(j > i, s, 0.0)
    return out


def camera_path(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrist position (T, 3) m in camera coordinates and in-image lean (T,) deg of the forearm.

    The hand drifts from the left of the frame to the right and back, bobbing a little, and
    moves slightly toward and away from the camera.
    """
    w = 2.0 * math.pi * times / DURATION_S
    x = -0.10 * np.cos(w)
    y = 0.055 + 0.015 * np.sin(2.0 * w)
    z = 0.50 + 0.04 * np.sin(w + 1.0)
    lean = 12.0 * np.sin(w) - 4.0
    return np.stack([x, y, z], axis=1), lean


# ---------------------------------------------------------------------------------------------
# From controls to MANO θ (axes measured on the model's own rest geometry)
# ---------------------------------------------------------------------------------------------

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Geodesic angle (…,) in degrees between rotation matrices (…, 3, 3)."""
    M = np.swapaxes(Ra, -1, -2) @ Rb
    cos = np.clip((np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def hand_frame(rest_joints: np.ndarray) -> np.ndarray:
    """Anatomical frame of a right hand at rest, (3, 3) with columns (radial, distal, palmar).

    radial points from the little finger's knuckle to the index finger's; distal from the wrist
    to the middle finger's knuckle; palmar out of the palm. For a right hand,
    palmar = radial × distal.
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    idx, mid, pin = (FINGER_JOINTS[f][0] for f in ("index", "middle", "pinky"))
    distal = _unit(j[mid] - j[0])
    radial = j[idx] - j[pin]
    radial = _unit(radial - distal * np.dot(radial, distal))
    palmar = np.cross(radial, distal)
    return np.stack([radial, distal, palmar], axis=1)


def pose_from_controls(ctrl: dict[str, np.ndarray], rest_joints: np.ndarray) -> np.ndarray:
    """Finger and thumb controls → local MANO rotations (T, 16, 3) rad (global orient left zero).

    Flexion axes come from the model's own rest skeleton: each finger bone direction ``d`` flexes
    about ``d × palmar`` (so that the tip moves toward the palm), and abducts about ``palmar``.
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    F = hand_frame(j)
    radial, distal, palmar = F[:, 0], F[:, 1], F[:, 2]
    T = len(next(iter(ctrl.values())))
    pose = np.zeros((T, 16, 3))
    for f in FINGERS4:
        ids = FINGER_JOINTS[f]
        curl = ctrl[f][:, None]
        for k, jid in enumerate(ids):
            child = ids[k + 1] if k < 2 else None
            d = _unit(j[child] - j[jid]) if child is not None else _unit(j[jid] - j[ids[k - 1]])
            d = _unit(d - palmar * np.dot(d, palmar))
            flex_axis = np.cross(d, palmar)
            R = rodrigues(np.radians(CURL_DEG[f][k]) * curl * flex_axis)
            if k == 0:  # abduction about the palm normal (flexion happens in the abducted plane)
                ab = np.radians(SPREAD_DEG[f]) * ctrl["spread"][:, None] * (1.0 - 0.7 * curl)
                R = rodrigues(ab * palmar) @ R
            pose[:, jid] = rotation_to_axis_angle(R)
    # Thumb: opposition at the first joint swings the thumb out of the palm plane and across
    # toward the little finger while turning its pad toward the fingers; curl flexes joints 2, 3.
    t1, t2, t3 = FINGER_JOINTS["thumb"]
    tip_dir = _unit(j[t3] - j[t1])
    across = _unit(-radial * 0.55 + palmar * 0.8 + distal * 0.15)
    across = _unit(across - tip_dir * np.dot(across, tip_dir))
    swing_axis = _unit(np.cross(tip_dir, across))
    opp = ctrl["thumb_oppose"][:, None]
    R1 = rodrigues(np.radians(55.0) * opp * swing_axis) @ rodrigues(np.radians(-35.0) * opp * tip_dir)
    pose[:, t1] = rotation_to_axis_angle(R1)
    curl_dir = _unit(palmar * 0.75 - radial * 0.65)
    for jid, child, deg in ((t2, t3, 45.0), (t3, None, 65.0)):
        d = _unit(j[child] - j[jid]) if child is not None else _unit(j[t3] - j[t2])
        c = _unit(curl_dir - d * np.dot(curl_dir, d))
        pose[:, jid] = np.radians(deg) * ctrl["thumb_curl"][:, None] * _unit(np.cross(d, c))
    return pose


def global_rotations(ctrl: dict[str, np.ndarray], lean_deg: np.ndarray, rest_joints: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Forearm and hand rotations, model rest frame → OpenCV camera, (T, 3, 3) each.

    At zero controls the hand is upright (fingers toward −y, image up), palm facing the camera,
    thumb toward +x (the image's right), as a raised right hand seen from the front.
    ``arm`` = lean about the viewing axis · base · pronation; ``hand`` = ``arm`` · wrist flexion ·
    wrist deviation (the forearm does not follow the wrist).
    """
    F = hand_frame(rest_joints)
    radial, distal, palmar = F[:, 0], F[:, 1], F[:, 2]
    target = np.stack([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]], axis=1)  # radial, distal, palmar
    base = target @ F.T
    # Tilt the hand back a little (fingers away from the camera) so the palm reads better.
    tilt = rodrigues(np.radians(-12.0) * radial)
    lean = rodrigues(np.radians(lean_deg)[:, None] * np.array([0.0, 0.0, 1.0]))
    roll = rodrigues(np.radians(ctrl["roll"])[:, None] * distal)
    arm = lean @ base @ tilt @ roll
    wrist = rodrigues(np.radians(ctrl["wrist_flex"])[:, None] * radial) @ rodrigues(
        np.radians(ctrl["wrist_dev"])[:, None] * palmar)
    return arm, arm @ wrist


def project(points: np.ndarray, focal: float, image_size=IMAGE_SIZE) -> np.ndarray:
    """Camera-frame points (…, 3) m → pixels (…, 2) in the clip (:func:`dahyf.geometry.project_points`)."""
    return project_points(np.asarray(points, dtype=np.float64), focal, image_size)


def model_digest(model) -> str:
    """Short SHA-256 of a hand model's arrays: tells whether the clip was rendered from this model."""
    h = hashlib.sha256()
    for k, v in sorted(model.arrays().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v, dtype=np.float64).tobytes())
    h.update(np.asarray(model.tip_vertex_ids, np.int64).tobytes())
    return h.hexdigest()[:16]


def make_ground_truth(model, fps: int = FPS, duration_s: float = DURATION_S) -> dict[str, np.ndarray]:
    """The full ground truth of the clip for a right hand model (``dahyf.HandModel``).

    Returns the GT dictionary (see the module docstring) plus ``vertices`` (T, V, 3) m,
    ``faces`` (F, 3) and ``arm_rotation`` (T, 3, 3), which the renderer needs.
    """
    import torch

    if model.side != "right":
        raise ValueError("the sample clip is scripted for a right hand model")
    T = int(round(fps * duration_s))
    times = np.arange(T) / fps
    rest = model.rest_joints
    ctrl = control_tracks(times)
    pose = pose_from_controls(ctrl, rest)
    wrist_pos, lean = camera_path(times)
    arm, hand = global_rotations(ctrl, lean, rest)
    pose[:, 0] = rotation_to_axis_angle(hand)
    betas = np.zeros(10)
    with torch.no_grad():
        zero = model(torch.zeros(1, 16, 3, dtype=torch.float64), torch.tensor(betas[None]))
        j0 = zero.joints[0, 0].numpy()
        # Global orientation rotates about the wrist joint, so wrist = j0 + transl.
        transl = wrist_pos - j0
        out = model(torch.tensor(pose), torch.tensor(np.tile(betas, (T, 1))), torch.tensor(transl))
    joints3d = out.keypoints.numpy()
    return {
        "pose": pose.astype(np.float32), "betas": betas.astype(np.float32), "transl": transl.astype(np.float32),
        "focal": np.float32(FOCAL), "principal_point": np.array(IMAGE_SIZE, np.float32) / 2,
        "image_size": np.array(IMAGE_SIZE, np.int32), "fps": np.float32(fps), "side": np.array("right"),
        "joints3d": joints3d.astype(np.float32), "joints2d": project(joints3d, FOCAL).astype(np.float32),
        "time_s": times.astype(np.float32),
        "joint_names": np.array(JOINT_NAMES), "model_digest": np.array(model_digest(model)),
        "vertices": out.vertices.numpy().astype(np.float32), "faces": model.faces.astype(np.int32),
        "arm_rotation": arm.astype(np.float32),
    }


# ---------------------------------------------------------------------------------------------
# Forearm (a tapered elliptic tube that hides the model's open wrist and helps palm detection)
# ---------------------------------------------------------------------------------------------

def forearm_mesh(model, n_around: int = 24, n_along: int = 8, length: float = 0.32
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Forearm tube in the model's rest frame, sized on the mesh's wrist cross-section.

    Returns vertices (V, 3) m (rest coordinates, wrist joint at its rest position) and
    triangles (F, 3). It starts 1.5 cm inside the hand and runs ``length`` m proximally.
    """
    rest = model.rest_joints
    F = hand_frame(rest)
    v = np.asarray(model.v_template, np.float64) - rest[0]
    local = v @ F  # (radial, distal, palmar)
    near = local[np.abs(local[:, 1] - local[:, 1].min() - 0.006) < 0.008]
    centre = np.array([near[:, 0].mean(), 0.0, near[:, 2].mean()])
    a = 0.5 * (near[:, 0].max() - near[:, 0].min()) * 1.0
    b = 0.5 * (near[:, 2].max() - near[:, 2].min()) * 0.95
    start = local[:, 1].min() + 0.015
    rings = []
    for i in range(n_along + 1):
        s = i / n_along
        y = start - s * length
        grow = 1.0 + 0.18 * s  # the forearm widens toward the elbow
        ang = np.linspace(0.0, 2.0 * math.pi, n_around, endpoint=False)
        ring = np.stack([centre[0] + a * grow * np.cos(ang), np.full_like(ang, y),
                         centre[2] + b * grow * 1.15 * np.sin(ang)], axis=1)
        rings.append(ring)
    verts_local = np.concatenate(rings)
    faces = []
    for i in range(n_along):
        for k in range(n_around):
            a0, a1 = i * n_around + k, i * n_around + (k + 1) % n_around
            b0, b1 = a0 + n_around, a1 + n_around
            faces += [(a0, b0, a1), (a1, b0, b1)]
    verts = verts_local @ F.T + rest[0]
    return verts, np.asarray(faces, dtype=np.int32)


def posed_forearm(arm_verts_rest: np.ndarray, rest_wrist: np.ndarray, arm_rotation: np.ndarray,
                  wrist_cam: np.ndarray) -> np.ndarray:
    """Forearm vertices (T, V, 3) in camera coordinates: rotate about the wrist, move to it."""
    rel = arm_verts_rest - rest_wrist
    return np.einsum("tij,vj->tvi", arm_rotation, rel) + wrist_cam[:, None, :]


# ---------------------------------------------------------------------------------------------
# Rendering and encoding (Blender runs in a child process)
# ---------------------------------------------------------------------------------------------

def blender_python() -> str:
    """The Python that can ``import bpy`` (the bpy wheel in this venv)."""
    return os.environ.get("DAHYF_BLENDER_PYTHON", sys.executable)


def _run_blender(args: list[str], log_path: Path) -> None:
    if not RENDER_SCRIPT.is_file():
        raise FileNotFoundError(f"{RENDER_SCRIPT} not found: regenerate the sample from a checkout of the repository.")
    cmd = [blender_python(), str(RENDER_SCRIPT), *args]
    with open(log_path, "ab") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = Path(log_path).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"Blender step failed ({' '.join(cmd)}), exit {proc.returncode}; log tail:\n{tail}")


def write_scene(gt: dict, model, path: Path, samples: int, denoise: bool) -> str:
    """Write what the renderer needs to ``path`` (.npz); return a digest of it for caching."""
    arm_rest, arm_faces = forearm_mesh(model)
    wrist_cam = gt["joints3d"][:, 0].astype(np.float64)
    arm = posed_forearm(arm_rest, model.rest_joints[0], gt["arm_rotation"].astype(np.float64), wrist_cam)
    scene = dict(hand_vertices=gt["vertices"], hand_faces=gt["faces"], arm_vertices=arm.astype(np.float32),
                 arm_faces=arm_faces, focal=gt["focal"], image_size=gt["image_size"],
                 samples=np.int32(samples), denoise=np.bool_(denoise))
    h = hashlib.sha256()
    for k in sorted(scene):
        h.update(k.encode())
        h.update(np.ascontiguousarray(scene[k]).tobytes())
    h.update(RENDER_SCRIPT.read_bytes())
    np.savez(path, **scene)
    return h.hexdigest()[:16]


def render_frames(scene_path: Path, frames_dir: Path, frames: list[int], log_path: Path) -> None:
    """Render the listed frames (0-based) of the scene to ``frames_dir/%05d.png``."""
    if frames:
        _run_blender(["--scene", str(scene_path), "--frames-dir", str(frames_dir),
                      "--frames", ",".join(map(str, frames))], log_path)


def encode_video(frames_dir: Path, n_frames: int, fps: int, out_path: Path, log_path: Path) -> str:
    """Encode ``frames_dir/%05d.png`` to H.264 MP4 with Blender's FFmpeg; return the codec used.

    Falls back to OpenCV's MPEG-4 part 2 ('mp4v') encoder when the H.264 encode fails.
    """
    try:
        _run_blender(["--encode", str(frames_dir), "--n-frames", str(n_frames), "--fps", str(fps),
                      "--video", str(out_path)], log_path)
        return "h264"
    except RuntimeError:
        import cv2

        first = cv2.imread(str(frames_dir / f"{0:05d}.png"))
        w = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (first.shape[1], first.shape[0]))
        for t in range(n_frames):
            w.write(cv2.imread(str(frames_dir / f"{t:05d}.png")))
        w.release()
        return "mp4v"


def save_ground_truth(gt: dict, path: Path) -> None:
    """Write the GT npz (without the renderer-only arrays)."""
    keep = {k: v for k, v in gt.items() if k not in ("vertices", "faces", "arm_rotation")}
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez_compressed(tmp, **keep)
    os.replace(tmp, path)


def load_ground_truth(path: str | Path = SAMPLE_GT) -> dict[str, np.ndarray]:
    """Read a sample-clip ground-truth file into a dict of arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m dahyf.sample_video --out {path.parent}`.")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def generate(out_dir: Path, work_dir: Path | None = None, samples: int = 12, denoise: bool = False,
             duration_s: float = DURATION_S, fps: int = FPS, model: str = "open", frames: list[int] | None = None,
             log=None) -> dict:
    """Make the clip and its GT in ``out_dir``; frames are cached in ``work_dir`` by scene digest.

    ``frames``: render only these frame indices (a quick look; no video is written then).
    Returns a summary dict (frames, seconds per frame, codec, sizes).
    """
    from .hand.model import load_hand_model

    log = log or (lambda *a: print(*a, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hand = load_hand_model(model, "right")
    gt = make_ground_truth(hand, fps=fps, duration_s=duration_s)
    T = len(gt["pose"])
    work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "dahyf_sample_render"
    work_dir.mkdir(parents=True, exist_ok=True)
    scene_path = work_dir / "scene.npz"
    digest = write_scene(gt, hand, scene_path, samples, denoise)
    frames_dir = work_dir / f"frames_{digest}"
    frames_dir.mkdir(exist_ok=True)
    log_path = work_dir / "blender.log"
    wanted = list(range(T)) if frames is None else [f for f in frames if 0 <= f < T]
    todo = [f for f in wanted if not (frames_dir / f"{f:05d}.png").is_file()]
    log(f"{T} frames, {len(wanted) - len(todo)} cached in {frames_dir}, rendering {len(todo)} "
        f"(Cycles CPU, {samples} samples{', denoised' if denoise else ''})")
    t0 = time.perf_counter()
    chunk = 30
    for i in range(0, len(todo), chunk):
        render_frames(scene_path, frames_dir, todo[i:i + chunk], log_path)
        done = min(i + chunk, len(todo))
        el = time.perf_counter() - t0
        log(f"  {done}/{len(todo)} frames, {el / done:.2f} s/frame")
    render_s = time.perf_counter() - t0
    summary = {"frames": T, "rendered": len(todo), "seconds_per_frame": render_s / max(len(todo), 1),
               "samples": samples, "denoise": denoise, "frames_dir": str(frames_dir)}
    if frames is not None:
        return summary
    video = out_dir / VIDEO_NAME
    tmp_video = work_dir / ("encode_" + VIDEO_NAME)
    if tmp_video.exists():
        tmp_video.unlink()
    summary["codec"] = encode_video(frames_dir, T, fps, tmp_video, log_path)
    shutil.move(str(tmp_video), video)
    save_ground_truth(gt, out_dir / GT_NAME)
    summary["video_bytes"] = video.stat().st_size
    log(json.dumps(summary, indent=1))
    return summary


# ---------------------------------------------------------------------------------------------
# Checks and evaluation
# ---------------------------------------------------------------------------------------------

def mediapipe_check(video_path: str | Path, gt: Mapping, stride: int = 1) -> dict:
    """Run the MediaPipe hand landmarker (video mode) on the decoded clip and compare with the GT.

    Every frame is fed to the tracker (so tracking behaves as in capture); every ``stride``-th
    frame is scored. Returns ``detection_rate``, ``median_err_px``, ``median_err_pct`` (of hand
    size), ``p90_err_pct`` and ``frames`` (scored).
    """
    import cv2

    from .capture.tracking import HandDetector

    j2d = np.asarray(gt["joints2d"], dtype=np.float64)
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {video_path}")
    errs, pct, found, scored = [], [], 0, 0
    with HandDetector(max_hands=1) as detector:
        t = 0
        while True:
            ok, frame = cap.read()
            if not ok or t >= len(j2d):
                break
            hands = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if t % stride == 0:
                scored += 1
                if hands:
                    found += 1
                    e = np.linalg.norm(hands[0].landmarks - j2d[t], axis=1)
                    errs.append(np.median(e))
                    pct.append(100.0 * np.median(e) / hand_size_px(j2d[t]))
            t += 1
    cap.release()
    return {"frames": scored, "detection_rate": found / max(scored, 1),
            "median_err_px": float(np.median(errs)) if errs else float("nan"),
            "median_err_pct": float(np.median(pct)) if pct else float("nan"),
            "p90_err_pct": float(np.percentile(pct, 90)) if pct else float("nan")}


def _field(obj, name):
    if isinstance(obj, Mapping) or hasattr(obj, "files"):
        return obj[name] if name in (obj.keys() if isinstance(obj, Mapping) else obj.files) else None
    return getattr(obj, name, None)


def evaluate_take_against_gt(take, gt) -> dict:
    """PA-MPJPE and global-orientation error of a capture of the sample clip.

    Parameters
    ----------
    take : a ``dahyf.Take``, a mapping, or the path of a take ``.npz``: needs ``pose`` (N, 16, 3)
        and ``joints3d`` (N, 21, 3) m; uses ``frame`` (N,) and ``track`` (N,) when present (the
        right-hand track, else the longest, is scored).
    gt : the GT mapping or the path of ``open_hand_sample_gt.npz``.

    Returns
    -------
    dict with ``pa_mpjpe_mm`` (mean over frames of the mean joint error after similarity
    alignment, 21 keypoints), ``orient_err_deg_median`` (median geodesic angle between captured
    and true global orientation), ``rr_mpjpe_mm`` (wrist-relative MPJPE) and ``frames`` (scored).
    """
    if isinstance(gt, (str, Path)):
        gt = load_ground_truth(gt)
    if isinstance(take, (str, Path)):
        with np.load(take, allow_pickle=False) as z:
            take = {k: z[k] for k in z.files}
    pose = np.asarray(_field(take, "pose"), dtype=np.float64)
    j3d = np.asarray(_field(take, "joints3d"), dtype=np.float64)
    N = len(pose)
    frame = _field(take, "frame")
    frame = np.arange(N) if frame is None else np.asarray(frame, dtype=np.int64)
    track = _field(take, "track")
    keep = np.ones(N, bool)
    if track is not None:
        track = np.asarray(track)
        hd = _field(take, "handedness")
        tracks = np.unique(track)
        choice = None
        if hd is not None:
            hd = [str(h) for h in np.asarray(hd).ravel()]
            rights = [t for t in tracks if int(t) < len(hd) and hd[int(t)] == "right"]
            choice = rights[0] if rights else None
        if choice is None:
            choice = tracks[np.argmax([(track == t).sum() for t in tracks])]
        keep = track == choice
    T = len(gt["pose"])
    keep &= (frame >= 0) & (frame < T)
    pose, j3d, frame = pose[keep], j3d[keep], frame[keep]
    if len(frame) == 0:
        raise ValueError("the take has no frame of the sample clip to score")
    gj = np.asarray(gt["joints3d"], dtype=np.float64)[frame]
    gpose = np.asarray(gt["pose"], dtype=np.float64)[frame]
    pa = [np.linalg.norm(procrustes_align(g, p) - g, axis=1).mean() for p, g in zip(j3d, gj)]
    rr = np.linalg.norm((j3d - j3d[:, :1]) - (gj - gj[:, :1]), axis=2).mean(1)
    ang = rotation_angle_deg(rodrigues(pose[:, 0]), rodrigues(gpose[:, 0]))
    return {"pa_mpjpe_mm": float(1000 * np.mean(pa)), "rr_mpjpe_mm": float(1000 * np.mean(rr)),
            "orient_err_deg_median": float(np.median(ang)), "frames": int(len(frame))}


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dahyf.sample_video", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: engine/assets/sample)")
    p.add_argument("--work", type=Path, default=None, help="frame cache folder (default: $TMPDIR/dahyf_sample_render)")
    p.add_argument("--samples", type=int, default=12, help="Cycles samples per pixel (default 12)")
    p.add_argument("--denoise", action="store_true", help="OpenImageDenoise each frame (slow on CPU)")
    p.add_argument("--frames", type=str, default=None, help="only render these frames, e.g. 0,60,120 (preview)")
    p.add_argument("--check", action="store_true", help="afterwards, run MediaPipe on the clip and print the figures")
    a = p.parse_args(argv)
    frames = [int(x) for x in a.frames.split(",")] if a.frames else None
    summary = generate(a.out, a.work, samples=a.samples, denoise=a.denoise, frames=frames)
    if a.check and frames is None:
        gt = load_ground_truth(a.out / GT_NAME)
        print(json.dumps(mediapipe_check(a.out / VIDEO_NAME, gt), indent=1))
    return 0 if summary else 1


if __name__ == "__main__":
    raise SystemExit(main())
