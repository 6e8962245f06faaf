"""Rendering of clips from ground truth: the forearm, the scene file, the Blender child process,
the frame cache and the H.264 encode (``python -m dahyf.sample_video`` drives it).

Blender runs as a separate process (``dahyf_blender/devtools/render_sample.py``, a repository
tool) so that ``dahyf`` never imports it; the Python used is this one (the bpy wheel) unless
``DAHYF_BLENDER_PYTHON`` names another.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from .script import FPS, DURATION_S, GT_NAME, VIDEO_NAME, hand_frame, make_ground_truth, save_ground_truth

REPO = Path(__file__).resolve().parent.parent.parent
RENDER_MODULE = "dahyf_blender.devtools.render_sample"
RENDER_SCRIPT = REPO / "dahyf_blender" / "devtools" / "render_sample.py"


@dataclass(frozen=True)
class Look:
    """How a clip looks: skin albedo range (sRGB), background colours (linear) and pattern size
    (0 = plain), light power scale, world ambient strength. The defaults are the sample clip's."""

    skin_light: tuple = (0.78, 0.54, 0.43)
    skin_dark: tuple = (0.72, 0.48, 0.38)
    background: tuple = ((0.16, 0.20, 0.25), (0.16, 0.20, 0.25))
    background_scale: float = 0.0
    light_scale: float = 1.0
    ambient: float = 0.2


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
        raise FileNotFoundError(f"{RENDER_SCRIPT} not found: render clips from a checkout of the repository.")
    cmd = [blender_python(), "-m", RENDER_MODULE, *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "ab") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    if proc.returncode != 0:
        tail = Path(log_path).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"Blender step failed ({' '.join(cmd)}), exit {proc.returncode}; log tail:\n{tail}")


def write_scene(meshes: list[tuple[np.ndarray, np.ndarray, int]], focal: float, image_size, path: Path,
                samples: int, denoise: bool, look: Look = Look()) -> str:
    """Write what the renderer needs to ``path`` (.npz); return a digest of it for caching.

    meshes : ``(vertices (T, V, 3) or (T, S, V, 3) m camera coordinates, faces (F, 3), subdivision
        levels[, colour])`` per mesh; S sub-frame samples are averaged (motion blur). A mesh with
        a colour (sRGB, 3 values in [0, 1]) is an object of that plain colour (a prop the hand holds);
        without one it is skin.
    """
    scene = dict(mesh_count=np.int32(len(meshes)), focal=np.float32(focal),
                 image_size=np.asarray(image_size, np.int32), samples=np.int32(samples), denoise=np.bool_(denoise))
    for i, (verts, faces, subdiv, *colour) in enumerate(meshes):
        verts = np.asarray(verts, np.float32)
        scene[f"mesh{i}_vertices"] = verts[:, None] if verts.ndim == 3 else verts
        scene[f"mesh{i}_faces"] = np.asarray(faces, np.int32)
        scene[f"mesh{i}_subdiv"] = np.int32(subdiv)
        if colour:
            scene[f"mesh{i}_colour"] = np.asarray(colour[0], np.float32)
    for k, v in asdict(look).items():
        scene[k] = np.asarray(v, np.float32)
    h = hashlib.sha256()
    for k in sorted(scene):
        h.update(k.encode())
        h.update(np.ascontiguousarray(scene[k]).tobytes())
    h.update(RENDER_SCRIPT.read_bytes())
    np.savez(path, **scene)
    return h.hexdigest()[:16]


def sample_meshes(gt: dict, model) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The sample clip's meshes for :func:`write_scene`: the hand and its forearm."""
    arm_rest, arm_faces = forearm_mesh(model)
    wrist_cam = gt["joints3d"][:, 0].astype(np.float64)
    arm = posed_forearm(arm_rest, model.rest_joints[0], gt["arm_rotation"].astype(np.float64), wrist_cam)
    return [(gt["vertices"], gt["faces"], 0), (arm, arm_faces, 1)]


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


def render_clip(scene_path: Path, digest: str, n_frames: int, fps: int, work_dir: Path, video: Path | None,
                frames: list[int] | None = None, chunk: int = 30, log=print) -> dict:
    """Render a written scene (frames cached in ``work_dir/frames_<digest>``) and encode it to ``video``.

    ``frames``: render only these (a quick look; nothing is encoded). Returns a summary dict.
    """
    frames_dir = work_dir / f"frames_{digest}"
    frames_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "blender.log"
    wanted = list(range(n_frames)) if frames is None else [f for f in frames if 0 <= f < n_frames]
    todo = [f for f in wanted if not (frames_dir / f"{f:05d}.png").is_file()]
    log(f"{n_frames} frames, {len(wanted) - len(todo)} cached in {frames_dir}, rendering {len(todo)}")
    t0 = time.perf_counter()
    for i in range(0, len(todo), chunk):
        render_frames(scene_path, frames_dir, todo[i:i + chunk], log_path)
        done = min(i + chunk, len(todo))
        log(f"  {done}/{len(todo)} frames, {(time.perf_counter() - t0) / done:.2f} s/frame")
    summary = {"frames": n_frames, "rendered": len(todo),
               "seconds_per_frame": (time.perf_counter() - t0) / max(len(todo), 1), "frames_dir": str(frames_dir)}
    if frames is None and video is not None:
        tmp_video = work_dir / ("encode_" + video.name)
        if tmp_video.exists():
            tmp_video.unlink()
        summary["codec"] = encode_video(frames_dir, n_frames, fps, tmp_video, log_path)
        with atomic_path(video) as tmp:   # work_dir may be on another file system
            shutil.copyfile(tmp_video, tmp)
        tmp_video.unlink()
        summary["video_bytes"] = video.stat().st_size
    return summary


def generate(out_dir: Path, work_dir: Path | None = None, samples: int = 12, denoise: bool = False,
             duration_s: float = DURATION_S, fps: int = FPS, model: str = "open", frames: list[int] | None = None,
             log=None) -> dict:
    """Make the sample clip and its GT in ``out_dir``; frames are cached in ``work_dir`` by scene digest.

    ``frames``: render only these frame indices (a quick look; no video is written then).
    Returns a summary dict (frames, seconds per frame, codec, sizes).
    """
    from ..hand.model import load_hand_model

    log = log or (lambda *a: print(*a, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hand = load_hand_model(model, "right")
    gt = make_ground_truth(hand, fps=fps, duration_s=duration_s)
    work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "dahyf_sample_render"
    work_dir.mkdir(parents=True, exist_ok=True)
    scene_path = work_dir / "scene.npz"
    digest = write_scene(sample_meshes(gt, hand), float(gt["focal"]), gt["image_size"], scene_path, samples, denoise)
    log(f"Cycles CPU, {samples} samples{', denoised' if denoise else ''}")
    summary = render_clip(scene_path, digest, len(gt["pose"]), fps, work_dir,
                          None if frames is not None else out_dir / VIDEO_NAME, frames=frames, log=log)
    summary.update(samples=samples, denoise=denoise)
    if frames is None:
        save_ground_truth(gt, out_dir / GT_NAME)
        log(json.dumps(summary, indent=1))
    return summary
