"""The live preview window's picture for the README: frames of the sample clip played in real time
through live capture, each with what `dahyf live` draws over it (skeleton, raw landmarks, fps and
latency).

Run: ``.venv/bin/python docs/render_live_preview.py [--out docs/images/live_preview.png]``
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import dahyf
from dahyf.capture.live_commands import draw_live
from dahyf.sample_video import SAMPLE_VIDEO

#: Source frames shown (fist, pointing, wave of the gesture script).
FRAMES = (75, 120, 185)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="docs/images/live_preview.png")
    args = p.parse_args(argv)
    live = dahyf.load_engine(device="cpu").live(str(SAMPLE_VIDEO), hands="right", keep_images=True).start()
    shots, last = {}, -1
    while live.running and len(shots) < len(FRAMES):
        pose = live.wait(after=last, timeout=1.0)
        if pose is None or pose.index == last:
            continue
        last = pose.index
        want = next((f for f in FRAMES if f not in shots and pose.index >= f), None)
        if want is not None and len(pose.rows["frame"]):
            line = f"frame {pose.index}  latency {pose.latency_s * 1e3:.0f} ms"
            shots[want] = draw_live(pose.image.copy(), pose, live.handedness, line)
    live.stop()
    tiles = [cv2.resize(shots[f], (320, 240), interpolation=cv2.INTER_AREA) for f in FRAMES if f in shots]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, np.concatenate(tiles, axis=1))
    print(f"wrote {args.out} ({len(tiles)} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
