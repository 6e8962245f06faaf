"""Pictures of offline coverage recovery: frames of the rendered hard clips where MediaPipe's forward
pass finds no hand, with what offline capture keys there.

Each panel: the video frame with the captured hand's projected skeleton — orange where the hand was
recovered from the pixels (followed backward, or found again around where the neighbouring frames put
it), red where a short gap was interpolated (flagged ``filled``); the caption says which, and that the
single forward pass (``--no-recover``) has no row there.

Run: ``.venv/bin/python docs/render_coverage.py [--out docs/images/coverage_recovery.png]``
(captures four clips of ``benchmarks/fidelity_clips``, each twice; about a minute).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import dahyf
from dahyf.capture.video import VideoReader
from dahyf.hand.tables import KEYPOINT_BONES
from dahyf.sample_video.clips import CLIPS_DIR

PANEL = 200
#: (clip, frames shown): frames the forward pass misses.
SHOWN = (("edge_enter", (0, 2)), ("blur_swipe", (14, 22)), ("grip_bottle", (28, 30)), ("small_far", (52, 53)))
RECOVERED, FILLED = (0, 140, 255), (40, 40, 230)


def panel(image: np.ndarray, joints2d: np.ndarray, colour, caption: str) -> np.ndarray:
    """The frame around the hand (at least a third of the frame), the skeleton drawn, a caption."""
    img = image.copy()
    for a, b in KEYPOINT_BONES:
        cv2.line(img, tuple(joints2d[a].astype(int)), tuple(joints2d[b].astype(int)), colour, 2, cv2.LINE_AA)
    h, w = img.shape[:2]
    lo, hi = joints2d.min(0), joints2d.max(0)
    c = np.clip((lo + hi) / 2, 0, [w, h])
    half = int(max(max(hi - lo) * 0.8, min(w, h) / 3))
    big = cv2.copyMakeBorder(img, half, half, half, half, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    x0, y0 = int(c[0]), int(c[1])
    crop = cv2.resize(big[y0:y0 + 2 * half, x0:x0 + 2 * half], (PANEL, PANEL), interpolation=cv2.INTER_AREA)
    cv2.rectangle(crop, (0, PANEL - 34), (PANEL, PANEL), (255, 255, 255), -1)
    for k, line in enumerate(caption.split("\n")):
        cv2.putText(crop, line, (4, PANEL - 21 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (30, 30, 30), 1, cv2.LINE_AA)
    return crop


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/images/coverage_recovery.png"))
    args = p.parse_args(argv)
    engine = dahyf.load_engine(device="cpu")
    panels = []
    for name, frames in SHOWN:
        video = CLIPS_DIR / f"{name}.mp4"
        if not video.is_file():
            print(f"{video} missing: render the clips first (python -m dahyf.sample_video --clips {CLIPS_DIR})")
            return 1
        single = engine.capture(str(video), hands="both", recover=False)
        take = engine.capture(str(video), hands="both")
        images = {f.index: f.image for f in VideoReader(video) if f.index in frames}
        for f in frames:
            rows = np.flatnonzero(take.frame == f)
            if not len(rows) or f in set(single.frame.tolist()):
                print(f"{name} frame {f}: not a recovered frame any more; pick others")
                return 1
            r = rows[0]
            filled = bool(take.filled[r])
            how = "interpolated, filled" if filled else "found in the pixels"
            panels.append(panel(images[f], take.joints2d_proj[r], FILLED if filled else RECOVERED,
                                f"{name} {f}: one pass: -\noffline: {how}"))
    rows = [np.hstack(panels[i:i + 4]) for i in range(0, len(panels), 4)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
