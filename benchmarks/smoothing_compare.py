"""Compare the captures' zero-lag smoothers on the same raw estimates (benchmarks/fidelity.md, "Smoothing").

Each video is captured once without smoothing; every track is then refiltered with each smoother,
its joints re-projected, and scored against the raw landmarks: median 2-D distance per hand size
(box diagonal) and jitter reduction (second differences), as ``dahyf bench capture`` does.

Run: ``.venv/bin/python benchmarks/smoothing_compare.py VIDEO [VIDEO ...]``
"""
from __future__ import annotations

import sys

import numpy as np

import dahyf
from dahyf.capture.bench import jitter
from dahyf.capture.filters import SMOOTH_SIGMA_S, CentredSmoother, PoseSample
from dahyf.geometry import hand_size, project_points
from dahyf.hand.model import keypoint_function, load_hand_model

SMOOTHERS = {
    "none": lambda fps: CentredSmoother(0.0),
    "local mean, smooth 0.5": lambda fps: CentredSmoother(0.5 * SMOOTH_SIGMA_S * fps),
    "local quadratic (capture default), smooth 0.5": lambda fps: CentredSmoother.from_smoothing(0.5, fps),
}


def refilter(take, make, keypoints) -> list[tuple[float, float, int]]:
    """(median 2-D distance / hand size, jitter reduction, rows) per track of ``take`` refiltered."""
    out = []
    for t in take.tracks():
        if len(t) < 3:
            continue
        f = make(take.fps)
        rows = []
        for i in range(len(t)):
            rows += f.push(PoseSample(int(t.frame[i]), float(t.time_s[i]), t.pose[i].astype(np.float64),
                                      t.transl[i].astype(np.float64)))
        rows += f.flush()
        pose = np.stack([r.pose for r in rows]).astype(np.float32)
        transl = np.stack([r.transl for r in rows]).astype(np.float32)
        j2d = project_points(keypoints[t.handedness](pose, t.betas, transl), take.focal, take.image_size)
        size = hand_size(t.landmarks2d)
        dist = np.linalg.norm(j2d - t.landmarks2d, axis=-1).mean(-1) / np.maximum(size, 1.0)
        out.append((float(np.median(dist)), 1.0 - jitter(t.frame, j2d, size) / jitter(t.frame, t.landmarks2d, size),
                    len(t)))
    return out


def main(videos: list[str]) -> int:
    engine = dahyf.load_engine(device="cpu")
    keypoints = {s: keypoint_function(load_hand_model("open", s)) for s in ("right", "left")}
    for video in videos:
        take = engine.capture(video, hands="both", smooth=0.0)
        print(video)
        for name, make in SMOOTHERS.items():
            cells = [f"2-D {100 * d:.2f} %, jitter -{100 * j:.0f} % ({n} rows)" for d, j, n in refilter(take, make, keypoints)]
            print(f"  {name:46s} " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
