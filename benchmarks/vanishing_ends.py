"""The real test video's left fist sliding behind the other forearm (frames ~305-315), captured with
and without the vanishing-ends trim (:data:`dahyf.capture.stages.VANISH_RATE`): per kept frame the
wrist depth and the turn from the previous frame, and a picture strip (the frames with MediaPipe's
landmarks in green and the captured hand's projection in red) written to ``out/`` only — the video
is third-party material.

Run: ``.venv/bin/python benchmarks/vanishing_ends.py [--video PATH] [--frames 300:316]``
(two captures of the whole video, about a minute on 2 CPUs).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

import dahyf
from dahyf.capture import stages
from dahyf.capture.video import VideoReader
from dahyf.eval.bench_fidelity import DEFAULT_VIDEO
from dahyf.sample_video.script import rodrigues


def turns_deg(pose: np.ndarray) -> np.ndarray:
    """(n - 1,) degrees between consecutive global orientations of ``pose`` (n, 16, 3) axis-angle."""
    R = rodrigues(np.asarray(pose[:, 0], np.float64))
    cos = (np.trace(np.swapaxes(R[:-1], -1, -2) @ R[1:], axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--frames", default="300:316", help="frames to print and draw")
    args = ap.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video} not found (the team's test video, ../shared/media/videos)")
    lo, hi = (int(v) for v in args.frames.split(":"))
    engine = dahyf.load_engine()
    takes = {"without the trim": None, "with the trim": None}
    with mock.patch.object(stages, "VANISH_RATE", float("inf")):      # no depth speed is too fast
        takes["without the trim"] = engine.capture(str(args.video), hands="both")
    takes["with the trim"] = engine.capture(str(args.video), hands="both")
    images = {f.index: f.image for f in VideoReader(args.video, (lo, hi))}
    strips = []
    for name, take in takes.items():
        t = take.track_for("left")
        sel = (t.frame >= lo) & (t.frame < hi)
        turn = np.concatenate([[0.0], turns_deg(t.pose[sel])])
        print(f"{name}: end_trimmed_rows {take.meta.get('end_trimmed_rows')}; left hand, frame: depth m / turn deg")
        print("  " + ", ".join(f"{f}: {z:.2f} / {a:.0f}" for f, z, a in zip(t.frame[sel], t.transl[sel, 2], turn)))
        tiles = []
        for k in range(lo, hi, 2):
            img = images[k].copy()
            for r in np.nonzero(t.frame == k)[0]:
                for p in t.landmarks2d[r]:
                    cv2.circle(img, tuple(int(v) for v in p), 4, (0, 255, 0), -1)
                for p in t.joints2d_proj[r]:
                    cv2.circle(img, tuple(int(v) for v in p), 3, (0, 0, 255), -1)
            cv2.putText(img, f"{k}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
            tiles.append(cv2.resize(img, None, fx=0.3, fy=0.3))
        strips.append(np.concatenate(tiles, 1))
    out = Path("out") / "vanishing_ends.png"
    out.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(out), np.concatenate(strips, 0))
    print(f"wrote {out} (top: without the trim, bottom: with it)")


if __name__ == "__main__":
    main()
