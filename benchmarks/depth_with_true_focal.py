"""Absolute depth error of the rendered fidelity clips when the engine is given the true focal length
(``--focal``, or a phone's 35 mm-equivalent focal from the container): what is left of the depth error
once the focal is not guessed. ``dahyf bench fidelity`` measures the same clips with the focal unknown.

Run: ``.venv/bin/python benchmarks/depth_with_true_focal.py`` (about 2 minutes on 2 CPUs).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import dahyf
from dahyf.eval.bench_fidelity import score_clip
from dahyf.sample_video.clips import CLIPS_DIR, load_clip_gt


def main() -> None:
    engine = dahyf.load_engine()
    pooled = []
    for gt_path in sorted(Path(CLIPS_DIR).glob("*_gt.npz")):
        name = gt_path.name[: -len("_gt.npz")]
        gt = load_clip_gt(gt_path)
        take = engine.capture(str(gt_path.with_name(name + ".mp4")), hands="both", focal=float(gt["focal"]))
        r = score_clip(take, gt, detections=[])
        pooled += r["_depth"]
        print(f"{name:16s} focal {float(gt['focal']):5.0f} px: depth error median {100 * r['depth_err_median']:5.1f} %, "
              f"PA-MPJPE {r['pa_mpjpe_mm']:.2f} mm")
    print(f"pooled median depth error with the true focal: {100 * np.median(pooled):.1f} %")


if __name__ == "__main__":
    main()
