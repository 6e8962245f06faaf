"""Pictures of the captured 3-D hand seen from the side, beside the video it came from.

Each panel: the video frame with the raw MediaPipe landmarks (white) and the captured hand's
projected joints (blue); then the captured hand's 3-D keypoints seen from the camera's right
(depth to the right, wrist-aligned), in blue, with the ground truth in green for rendered clips.
A straight finger must look straight from the side too.

Run: ``.venv/bin/python docs/render_fidelity.py [--out docs/images/fidelity_side.png]
[--checkpoint PATH]`` (captures two rendered fidelity clips and, when present, the team's real
video ``../shared/media/videos/dynhamr_demo3.mp4``; the real video's picture goes to ``out/``
only, it is third-party material).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import dahyf
from dahyf.capture.video import VideoReader
from dahyf.eval.bench_fidelity import DEFAULT_VIDEO
from dahyf.hand.tables import KEYPOINT_BONES
from dahyf.sample_video.clips import CLIPS_DIR, load_clip_gt

PANEL = 200
#: (clip, frames) shown for the rendered clips: an open hand turning, two hands.
CLIP_FRAMES = (("open_edge_turn", (0, 30)), ("two_hands", (20,)))
VIDEO_FRAMES = (60, 200, 330)


def side_view(points: list[tuple[np.ndarray, tuple]], size: int = PANEL, span_m: float = 0.24) -> np.ndarray:
    """Keypoints (21, 3) m seen from the camera's right: horizontal = depth z, vertical = y (down);
    each set is drawn wrist-aligned at the panel's lower middle, with its colour (BGR)."""
    img = np.full((size, size, 3), 255, np.uint8)
    cv2.putText(img, "side view (depth ->)", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    scale = size / span_m
    for kp, colour in points:
        rel = kp - kp[0]
        uv = np.stack([size * 0.35 + rel[:, 2] * scale, size * 0.8 + rel[:, 1] * scale], axis=1).astype(int)
        for a, b in KEYPOINT_BONES:
            cv2.line(img, tuple(uv[a]), tuple(uv[b]), colour, 2, cv2.LINE_AA)
    return img


def frame_view(image: np.ndarray, landmarks: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """The video frame around the hand, raw landmarks (white) and projected joints (blue)."""
    img = image.copy()
    for pts, colour, width in ((landmarks, (255, 255, 255), 3), (proj, (200, 80, 20), 1)):
        for a, b in KEYPOINT_BONES:
            cv2.line(img, tuple(pts[a].astype(int)), tuple(pts[b].astype(int)), colour, width, cv2.LINE_AA)
    lo, hi = landmarks.min(0), landmarks.max(0)
    c, half = (lo + hi) / 2, max(hi - lo) * 0.75 + 10
    x0, y0 = int(c[0] - half), int(c[1] - half)
    pad = int(2 * half)
    big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    crop = big[y0 + pad:y0 + pad + 2 * int(half), x0 + pad:x0 + pad + 2 * int(half)]
    return cv2.resize(crop, (PANEL, PANEL), interpolation=cv2.INTER_AREA)


def frames_of(video: Path, wanted) -> dict[int, np.ndarray]:
    out = {}
    for f in VideoReader(video, (min(wanted), max(wanted) + 1)):
        if f.index in wanted:
            out[f.index] = f.image
    return out


def panels(engine, video: Path, wanted, gt: dict | None) -> list[np.ndarray]:
    take = engine.capture(str(video), hands="both")
    images = frames_of(video, wanted)
    out = []
    for f in wanted:
        for i in np.flatnonzero(take.frame == f):
            sets = [(take.joints3d[i], (200, 80, 20))]
            if gt is not None:
                h = int(np.argmin(np.linalg.norm(gt["joints2d"][:, f] - take.landmarks2d[i], axis=-1).mean(-1)))
                sets.insert(0, (gt["joints3d"][h, f], (60, 170, 60)))
            out.append(np.hstack([frame_view(images[f], take.landmarks2d[i], take.joints2d_proj[i]), side_view(sets)]))
    return out


def sheet(rows: list[np.ndarray], per_row: int = 2) -> np.ndarray:
    blank = np.full_like(rows[0], 255)
    rows = rows + [blank] * (-len(rows) % per_row)
    return np.vstack([np.hstack(rows[i:i + per_row]) for i in range(0, len(rows), per_row)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/images/fidelity_side.png"))
    p.add_argument("--checkpoint", default=None)
    a = p.parse_args(argv)
    engine = dahyf.load_engine(a.checkpoint, device="cpu")
    rows = []
    for name, wanted in CLIP_FRAMES:
        video = CLIPS_DIR / f"{name}.mp4"
        rows += panels(engine, video, wanted, load_clip_gt(CLIPS_DIR / f"{name}_gt.npz"))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), sheet(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {a.out}")
    if DEFAULT_VIDEO.is_file():
        real = Path("out") / (a.out.stem + "_real.png")
        real.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(real), sheet(panels(engine, DEFAULT_VIDEO, VIDEO_FRAMES, None)))
        print(f"wrote {real} (third-party video: not for the repository)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
