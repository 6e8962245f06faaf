"""``python -m dahyf.sample_video``: render the sample clip (or the fidelity clips) with Cycles."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .evaluate import mediapipe_check
from .render import generate
from .script import DEFAULT_OUT, GT_NAME, VIDEO_NAME, load_ground_truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dahyf.sample_video",
                                description="Render the sample clip (or the fidelity clips) from the open hand model.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: engine/assets/sample)")
    p.add_argument("--work", type=Path, default=None, help="frame cache folder (default: $TMPDIR/dahyf_sample_render)")
    p.add_argument("--samples", type=int, default=12, help="Cycles samples per pixel (default 12)")
    p.add_argument("--denoise", action="store_true", help="OpenImageDenoise each frame (slow on CPU)")
    p.add_argument("--frames", type=str, default=None, help="only render these frames, e.g. 0,60,120 (preview)")
    p.add_argument("--check", action="store_true", help="afterwards, run MediaPipe on the clip and print the figures")
    p.add_argument("--clips", type=Path, default=None,
                   help="render the fidelity clips into this folder instead (e.g. benchmarks/fidelity_clips)")
    p.add_argument("--only", type=str, default=None, help="with --clips: only these clips (comma-separated names)")
    a = p.parse_args(argv)
    frames = [int(x) for x in a.frames.split(",")] if a.frames else None
    if a.clips is not None:
        from .clips import generate_clips

        only = a.only.split(",") if a.only else None
        summary = generate_clips(a.clips, a.work, only=only, frames=frames)
        print(json.dumps(summary, indent=1))
        return 0
    summary = generate(a.out, a.work, samples=a.samples, denoise=a.denoise, frames=frames)
    if a.check and frames is None:
        gt = load_ground_truth(a.out / GT_NAME)
        print(json.dumps(mediapipe_check(a.out / VIDEO_NAME, gt), indent=1))
    return 0 if summary else 1


if __name__ == "__main__":
    raise SystemExit(main())
