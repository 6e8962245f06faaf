"""Preview video of a take: each frame with the projected skeleton and the mesh outline.

Low-confidence (held) frames are drawn in red with a "held" label. Written atomically (dahyf.fileio): to a
temporary file in the same folder, renamed into place when complete.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..fileio import atomic_path
from ..geometry import project_points
from ..hand.tables import KEYPOINT_BONES
from .errors import CaptureError
from .take import Take
from .video import VideoReader

#: BGR colours per handedness, and for held (low-confidence) frames.
COLOURS = {"right": (60, 200, 255), "left": (255, 160, 60)}
HELD_COLOUR = (40, 40, 230)
LANDMARK_COLOUR = (90, 230, 90)
#: Largest side (px) of the mask the mesh silhouette is rasterised in.
OUTLINE_RESOLUTION = 160
#: Take rows whose mesh is posed in one batch.
VERTEX_BATCH = 64


def mesh_outline(vertices2d: np.ndarray, faces: np.ndarray, image_size: tuple[int, int]) -> list[np.ndarray]:
    """Outline (silhouette contours) of a projected mesh.

    Parameters
    ----------
    vertices2d : (V, 2) px.
    faces : (F, 3) vertex indices.
    image_size : (W, H) px.

    Returns
    -------
    list of (K, 1, 2) int32 contours, as cv2.findContours gives them.
    """
    w, h = image_size
    lo = np.maximum(np.floor(vertices2d.min(0)) - 2, 0)
    hi = np.minimum(np.ceil(vertices2d.max(0)) + 2, (w, h))
    if np.any(hi - lo <= 1):
        return []
    # rasterise at most OUTLINE_RESOLUTION px across (filling ~1500 triangles dominates the cost)
    scale = min(1.0, OUTLINE_RESOLUTION / float((hi - lo).max()))
    size = np.ceil((hi - lo) * scale).astype(int) + 1
    mask = np.zeros((size[1], size[0]), np.uint8)
    tris = np.round((vertices2d[faces] - lo) * scale).astype(np.int32)
    cv2.fillPoly(mask, tris, 255)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [np.round(c / scale + lo).astype(np.int32) for c in contours]


def draw_hand(image: np.ndarray, joints2d: np.ndarray, outline: list[np.ndarray], side: str,
              held: bool, landmarks2d: np.ndarray | None = None, thickness: int = 2) -> None:
    """Draw one hand in place: mesh outline, skeleton (tables.KEYPOINT_BONES), raw landmarks."""
    colour = HELD_COLOUR if held else COLOURS.get(side, (255, 255, 255))
    if outline:
        cv2.polylines(image, outline, True, colour, max(1, thickness - 1), cv2.LINE_AA)
    pts = np.round(joints2d).astype(np.int32)
    for a, b in KEYPOINT_BONES:
        cv2.line(image, tuple(map(int, pts[a])), tuple(map(int, pts[b])), colour, thickness, cv2.LINE_AA)
    for p in pts:
        cv2.circle(image, tuple(map(int, p)), thickness + 1, colour, -1, cv2.LINE_AA)
    if landmarks2d is not None:
        for p in np.round(landmarks2d).astype(np.int32):
            cv2.circle(image, tuple(map(int, p)), max(1, thickness - 1), LANDMARK_COLOUR, -1, cv2.LINE_AA)
    if held:
        x, y = pts.min(0)
        cv2.putText(image, "held (low confidence)", (int(x), max(int(y) - 8, 12)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, HELD_COLOUR, 1, cv2.LINE_AA)


def write_preview(video, take: Take, out, hand_models: dict, frame_range=None,
                  progress=None) -> Path:
    """Write ``out`` (.mp4): the video with each of the take's hands drawn over it.

    Parameters
    ----------
    video : the captured video (path).
    take : the take of that video.
    out : output .mp4 path.
    hand_models : {side: HandModel} for the mesh outline.
    frame_range : the same frame range the take was captured with.
    """
    out = Path(out).expanduser()
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise CaptureError(f"Cannot write the preview {out}: folder {folder} does not exist.")
    reader = VideoReader(video, frame_range)
    w, h = take.image_size
    if (reader.info.width, reader.info.height) != (w, h):
        reader.close()
        raise CaptureError(f"The take is {w}x{h} but {reader.info.name} is "
                           f"{reader.info.width}x{reader.info.height}: give the video the take was captured from.")
    thickness = max(1, round(max(w, h) / 640))
    try:
        with atomic_path(out) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(take.fps), (w, h))
            try:
                if not writer.isOpened():
                    raise CaptureError(f"OpenCV cannot write an .mp4 video to {out}.")
                _draw_frames(reader, writer, take, hand_models, thickness, progress)
            finally:
                writer.release()
    except OSError as exc:
        raise CaptureError(f"Could not write the preview {out}: {exc}. Check free disk space, "
                           "permissions, and that the path is not a folder.") from exc
    finally:
        reader.close()
    return out


def _draw_frames(reader, writer, take: Take, hand_models: dict, thickness: int, progress) -> None:
    """Draw each of the take's rows over its frame of ``reader`` and write every frame to ``writer``."""
    w, h = take.image_size
    order = np.argsort(take.frame, kind="stable")
    rows = _posed_rows(take, order, hand_models)
    row = next(rows, None)
    for frame in reader:
        img = frame.image
        while row is not None and row[0] < frame.index:
            row = next(rows, None)
        while row is not None and row[0] == frame.index:
            _, r, verts = row
            side = take.handedness[take.track[r]]
            outline = mesh_outline(project_points(verts, take.focal, (w, h)), hand_models[side].faces, (w, h))
            draw_hand(img, take.joints2d_proj[r], outline, side, bool(take.filled[r]),
                      take.landmarks2d[r], thickness)
            row = next(rows, None)
        writer.write(img)
        if progress is not None:
            progress(frame.index)


def _posed_rows(take: Take, order: np.ndarray, hand_models: dict):
    """Yield (frame, row, vertices (V, 3) m) in ``order``, posing the meshes in batches."""
    for start in range(0, len(order), VERTEX_BATCH):
        block = order[start:start + VERTEX_BATCH]
        verts: dict[int, np.ndarray] = {}
        for t, side in enumerate(take.handedness):
            sel = block[take.track[block] == t]
            if len(sel) == 0:
                continue
            v = hand_models[side](np.asarray(take.pose[sel], np.float32), np.asarray(take.betas[sel], np.float32),
                                  np.asarray(take.transl[sel], np.float32)).vertices
            verts.update(zip(sel.tolist(), v))
        for r in block:
            yield int(take.frame[r]), int(r), verts[int(r)]
